//! The event sinks a configuration asks for besides the decision log:
//! the audit log (`audit`: its outputs opened, the chain resumed from the
//! file, pulls written as configured) and webhook notifications
//! (`notifications.endpoints`, queued in the state store).

use std::path::Path;
use std::sync::Arc;

use portcullis_audit::{
    AuditSink, FileOutput, Output, Pulls, Settings, StdoutOutput, SyslogOutput,
};
use portcullis_config::{AuditPulls, Config, parse_pulls};

use crate::AssembleError;

/// The audit log's default file size before rotation: 100 MiB.
const MAX_BYTES: u64 = 100 << 20;
/// Rotated files kept by default.
const KEEP: usize = 10;

fn failed(key: &'static str) -> impl Fn(String) -> AssembleError {
    move |message| AssembleError { key, message }
}

/// The audit sink of `config`, or `None` when no output is configured.
///
/// # Errors
/// A file or socket that cannot be opened, or a file whose last line is
/// not a sealed audit line (continuing would hide the damage).
pub fn audit(config: &Config) -> Result<Option<Arc<AuditSink>>, AssembleError> {
    let audit = &config.audit;
    if !audit.enabled() {
        return Ok(None);
    }
    let mut outputs: Vec<Box<dyn Output>> = Vec::new();
    let mut head = portcullis_audit::Head::default();
    if let Some(file) = &audit.file {
        let path = Path::new(&file.path);
        let out = FileOutput::open(
            path,
            file.maxbytes.unwrap_or(MAX_BYTES),
            file.keep.unwrap_or(KEEP),
        )
        .map_err(|e| {
            failed("audit.file.path")(format!(
                "cannot open {}: {e}; create its directory and let portcullis write there",
                path.display()
            ))
        })?;
        head = out
            .head()
            .map_err(|e| failed("audit.file.path")(e.to_string()))?;
        outputs.push(Box::new(out));
    }
    if audit.stdout {
        outputs.push(Box::new(StdoutOutput));
    }
    if let Some(syslog) = &audit.syslog {
        let socket = syslog.socket.as_deref().unwrap_or("/dev/log");
        let out = SyslogOutput::connect(Path::new(socket)).map_err(|e| {
            failed("audit.syslog.socket")(format!(
                "cannot reach the syslog socket {socket}: {e}; is rsyslog or journald running?"
            ))
        })?;
        outputs.push(Box::new(out));
    }
    let pulls = match audit.pulls.as_deref().map(parse_pulls).transpose() {
        Ok(None | Some(AuditPulls::All)) => Pulls::All,
        Ok(Some(AuditPulls::Sample(n))) => Pulls::Sample(n),
        Ok(Some(AuditPulls::Aggregate)) => Pulls::Aggregate,
        Err(e) => return Err(failed("audit.pulls")(e)),
    };
    let mut settings = Settings {
        pulls,
        ..Settings::default()
    };
    if let Some(q) = audit.queue {
        settings.queue = q;
    }
    let sink = Arc::new(
        AuditSink::start(outputs, head, &settings)
            .map_err(|e| failed("audit")(format!("cannot start the audit writer: {e}")))?,
    );
    if let Some(dir) = config.storage.state_dir() {
        drain_admin_actions(dir, &sink);
    }
    Ok(Some(sink))
}

/// The notification sink of `notifications.endpoints`, or `None` when no
/// endpoint is enabled. Its queue is kept in the state directory (so
/// events survive a restart) when storage is on the filesystem.
///
/// # Errors
/// An endpoint that does not read (a bad duration, a missing name or URL).
pub fn notifier(
    config: &Config,
) -> Result<Option<Arc<portcullis_notify::Notifier>>, AssembleError> {
    let key = "notifications.endpoints";
    if config.notifications.endpoints.is_empty() {
        return Ok(None);
    }
    let mut endpoints = Vec::new();
    for (i, e) in config.notifications.endpoints.iter().enumerate() {
        let endpoint: portcullis_notify::Endpoint = serde_json::from_value(e.clone())
            .map_err(|err| failed(key)(format!("entry {i}: {err}")))?;
        endpoints.push(endpoint);
    }
    if endpoints.iter().all(|e| e.disabled) {
        return Ok(None);
    }
    let store = crate::state::store_or_memory(config);
    let settings = portcullis_notify::Settings {
        endpoints,
        source_addr: config.http.addr.clone(),
        instance_id: uuid::Uuid::new_v4().to_string(),
        ..portcullis_notify::Settings::default()
    };
    portcullis_notify::Notifier::start(settings, store)
        .map(|n| Some(Arc::new(n)))
        .map_err(|e| failed(key)(e.to_string()))
}

/// Moves the CLI's admin actions (`portcullis_audit::outbox`) into the log
/// every second, for as long as the sink lives.
fn drain_admin_actions(dir: std::path::PathBuf, sink: &Arc<AuditSink>) {
    let weak = Arc::downgrade(sink);
    let spawned = std::thread::Builder::new()
        .name("audit-outbox".into())
        .spawn(move || {
            let store = crate::state::dir_store(&dir);
            while let Some(sink) = weak.upgrade() {
                if let Err(e) = portcullis_audit::outbox::drain(&store, &sink) {
                    tracing::warn!(error = %e, "cannot read the CLI's admin actions for the audit log");
                }
                drop(sink);
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "admin actions from the CLI will not reach the audit log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Config {
        Config::from_yaml(yaml, "config.yml", &[]).unwrap().config
    }

    #[test]
    fn distribution_endpoints_are_read_as_written_and_bad_ones_are_named() {
        let good = load(
            "version: 0.1\nstorage: inmemory\nnotifications:\n  endpoints:\n    - name: alistener\n      url: http://127.0.0.1:9/event\n      headers:\n        Authorization: [Bearer abc]\n      timeout: 500ms\n      threshold: 10\n      backoff: 1s\n      ignoredmediatypes: [application/octet-stream]\n      ignore:\n        mediatypes: [application/octet-stream]\n        actions: [pull]\n",
        );
        assert!(notifier(&good).unwrap().is_some());
        let bad = load(
            "version: 0.1\nstorage: inmemory\nnotifications:\n  endpoints:\n    - name: x\n      url: http://127.0.0.1:9/\n      timeout: soon\n",
        );
        let Err(e) = notifier(&bad) else {
            panic!("a bad timeout was accepted")
        };
        let e = e.to_string();
        assert!(e.starts_with("notifications.endpoints: entry 0:"), "{e}");
        assert!(e.contains("soon"), "{e}");
    }
}
