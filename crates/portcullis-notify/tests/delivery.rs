//! The sink against a real HTTP listener: what arrives, retries, restarts,
//! ignores, the queue bound and headers.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_notify::{EVENTS_MEDIA_TYPE, Ignore, Notifier, Settings};
use portcullis_state::{DirStore, MemoryStore, StateStore, system_clock};
use portcullis_types::event::{EventSink, Kind, sink_contract};
use support::{Receiver, blob_push, endpoint, free_addr, pull, push, settings};

const FLUSH: Duration = Duration::from_secs(10);

fn memory() -> Arc<dyn StateStore> {
    Arc::new(MemoryStore::default())
}

fn start(s: Settings, store: Arc<dyn StateStore>) -> Notifier {
    Notifier::start(s, store).expect("notifier starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_the_sink_contract_and_wants_changes_and_pulls() {
    let r = Receiver::start(0).await;
    let n = start(settings(vec![endpoint("hook", &r.url())]), memory());
    sink_contract(&n);
    for kind in [Kind::Change, Kind::Pull] {
        assert!(n.wants(kind), "{kind:?}");
    }
    for kind in [
        Kind::Authentication,
        Kind::Decision,
        Kind::Admin,
        Kind::Abuse,
    ] {
        assert!(!n.wants(kind), "{kind:?}");
    }
    assert!(n.flush(FLUSH).await);
    // the contract's sample push and pull
    assert_eq!(r.accepted().len(), 2);
    assert_eq!(n.delivered(), 2);

    let none = start(settings(Vec::new()), memory());
    assert!(!none.wants(Kind::Change), "no endpoint, no events");
    sink_contract(&none);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_arrives_as_distribution_sends_it() {
    let r = Receiver::start(0).await;
    let n = start(settings(vec![endpoint("hook", &r.url())]), memory());
    n.emit(&push("team/app"));
    assert!(n.flush(FLUSH).await);
    let got = r.accepted();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers["content-type"], EVENTS_MEDIA_TYPE);
    let body = &got[0].body;
    let events = body["events"].as_array().expect("an events array");
    assert_eq!(events.len(), 1);
    let e = &events[0];
    let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    for k in [
        "id",
        "timestamp",
        "action",
        "target",
        "request",
        "actor",
        "source",
    ] {
        assert!(keys.contains(&k), "{k} in {keys:?}");
    }
    assert_eq!(e["action"], "push");
    assert_eq!(e["actor"]["name"], "alice");
    assert_eq!(e["target"]["repository"], "team/app");
    assert_eq!(e["target"]["tag"], "v1");
    assert_eq!(e["target"]["size"], 512);
    assert_eq!(e["request"]["addr"], "192.0.2.7");
    assert_eq!(e["request"]["host"], "registry.test:5000");
    assert_eq!(e["request"]["useragent"], "docker/28.2.2");
    assert_eq!(e["source"]["addr"], "registry.test:5000");
    assert!(uuid::Uuid::parse_str(e["id"].as_str().unwrap()).is_ok());
    assert!(
        time::OffsetDateTime::parse(
            e["timestamp"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_gets_the_event_after_retries_exactly_once() {
    let r = Receiver::start(3).await;
    let n = start(settings(vec![endpoint("hook", &r.url())]), memory());
    n.emit(&push("a"));
    assert!(n.flush(FLUSH).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let all = r.all();
    assert_eq!(
        all.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 500, 200]
    );
    let ids: Vec<_> = all
        .iter()
        .map(|r| r.body["events"][0]["id"].clone())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one event, resent");
    assert_eq!(
        (n.queued(), n.delivered(), n.failed(), n.dropped()),
        (1, 1, 3, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_queued_while_the_listener_is_down_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = || -> Arc<dyn StateStore> { Arc::new(DirStore::new(dir.path(), system_clock())) };
    let addr = free_addr();
    let url = format!("http://{addr}/hook");
    let first = start(settings(vec![endpoint("hook", &url)]), store());
    for i in 0..3 {
        first.emit(&push(&format!("repo{i}")));
    }
    assert!(
        !first.flush(Duration::from_millis(300)).await,
        "nobody listens"
    );
    assert!(first.failed() >= 1);
    drop(first);
    assert_eq!(store().list("notify").unwrap().len(), 3, "stored");

    let r = Receiver::start_on(addr, 0).await;
    let second = start(settings(vec![endpoint("hook", &url)]), store());
    assert_eq!(second.pending(), 3, "resumed");
    assert!(second.flush(FLUSH).await);
    let repos: Vec<_> = r
        .accepted()
        .iter()
        .map(|g| g.body["events"][0]["target"]["repository"].clone())
        .collect();
    assert_eq!(repos, ["repo0", "repo1", "repo2"], "in order");
    assert_eq!(second.delivered(), 3);
    assert!(store().list("notify").unwrap().is_empty());

    // a new event after the restart goes after them
    second.emit(&push("later"));
    assert!(second.flush(FLUSH).await);
    assert_eq!(r.accepted().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_actions_and_media_types_are_not_sent() {
    let r = Receiver::start(0).await;
    let everything = Receiver::start(0).await;
    let mut picky = endpoint("picky", &r.url());
    picky.ignore = Ignore {
        mediatypes: Vec::new(),
        actions: vec!["pull".into()],
    };
    picky.ignoredmediatypes = vec!["application/octet-stream".into()];
    let n = start(
        settings(vec![picky, endpoint("all", &everything.url())]),
        memory(),
    );
    n.emit(&pull("a"));
    n.emit(&blob_push("a"));
    n.emit(&push("a"));
    assert!(n.flush(FLUSH).await);
    let actions = |r: &Receiver| -> Vec<(String, String)> {
        r.accepted()
            .iter()
            .map(|g| {
                let e = &g.body["events"][0];
                (
                    e["action"].as_str().unwrap().to_owned(),
                    e["target"]["mediaType"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    assert_eq!(
        actions(&r),
        [(
            "push".to_owned(),
            "application/vnd.oci.image.manifest.v1+json".to_owned()
        )]
    );
    assert_eq!(actions(&everything).len(), 3);
    let stats = n.stats();
    assert_eq!((stats[0].name.as_str(), stats[0].queued), ("picky", 1));
    assert_eq!((stats[1].name.as_str(), stats[1].queued), ("all", 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_endpoints_get_nothing() {
    let r = Receiver::start(0).await;
    let mut off = endpoint("off", &r.url());
    off.disabled = true;
    let n = start(settings(vec![off]), memory());
    assert!(!n.wants(Kind::Change));
    n.emit(&push("a"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(r.all().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts_and_never_blocks() {
    let url = format!("http://{}/hook", free_addr());
    let mut e = endpoint("down", &url);
    e.backoff = Duration::from_secs(60);
    let s = Settings {
        queue_max: 5,
        ..settings(vec![e])
    };
    let n = start(s, memory());
    let started = Instant::now();
    for i in 0..200 {
        n.emit(&push(&format!("r{i}")));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "emit never waits"
    );
    assert_eq!((n.queued(), n.dropped(), n.pending()), (5, 195, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_headers_are_sent() {
    let r = Receiver::start(0).await;
    let mut e = endpoint("hook", &r.url());
    e.headers
        .insert("Authorization".into(), vec!["Bearer s3cret".into()]);
    e.headers
        .insert("X-Team".into(), vec!["one".into(), "two".into()]);
    let n = start(settings(vec![e]), memory());
    assert!(!format!("{n:?}").contains("s3cret"), "debug hides secrets");
    n.emit(&push("a"));
    assert!(n.flush(FLUSH).await);
    let got = r.accepted();
    let h = &got[0].headers;
    assert_eq!(h["authorization"], "Bearer s3cret");
    let team: Vec<_> = h.get_all("x-team").iter().collect();
    assert_eq!(team, ["one", "two"]);
    assert_eq!(h["content-type"], EVENTS_MEDIA_TYPE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_are_refused_without_their_values() {
    let mut e = endpoint("hook", "http://127.0.0.1:1/hook");
    e.headers
        .insert("Authorization".into(), vec!["Bearer s3cret\n".into()]);
    let err = Notifier::start(settings(vec![e]), memory()).unwrap_err();
    assert!(err.to_string().contains("Authorization"));
    assert!(!err.to_string().contains("s3cret"));
    let err = Notifier::start(settings(vec![endpoint("x", "ftp://h/")]), memory()).unwrap_err();
    assert!(err.to_string().contains("`x`"));
    let twice = vec![endpoint("x", "http://h/"), endpoint("x", "http://h/")];
    assert!(Notifier::start(settings(twice), memory()).is_err());
    assert!(Notifier::start(settings(vec![endpoint("", "http://h/")]), memory()).is_err());
}
