//! Policy decision benchmark: a 1,000-rule policy over 10,000 users in
//! groups, 1,000,000 decisions over mixed principals, repositories and
//! actions. Run with
//! `cargo run --release -p portcullis-auth --example policy_bench`.
//!
//! Prints nanoseconds per decision for `decide` (with its explanation) and
//! `allows` (the boolean form used to filter the catalog), for a typical
//! policy and for a worst case whose rules cannot be indexed.

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use portcullis_auth::policy::{Action, Policy, Principal};

const USERS: usize = 10_000;
const GROUPS: usize = 200;
const DECISIONS: usize = 1_000_000;

/// A small deterministic generator, so runs are comparable.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).expect("fits")
    }
}

fn rule(out: &mut String, subjects: &str, repos: &str, actions: &str, effect: &str) {
    let _ = writeln!(
        out,
        "  - subjects: [{subjects}]\n    repositories: [{repos}]\n    actions: [{actions}]\n    effect: {effect}"
    );
}

/// 10,000 users in 200 groups of 50 (each user also in a second group), and
/// 1,000 rules: per group a namespace, a shared glob and a deny; per user
/// some projects; a few rules for everyone; some robot denies.
fn typical() -> String {
    let mut y = String::from("groups:\n");
    for g in 0..GROUPS {
        let _ = write!(y, "  g{g}: [");
        for i in 0..USERS / GROUPS {
            let _ = write!(y, "u{}, ", g * (USERS / GROUPS) + i);
        }
        // A second membership for 50 users from elsewhere.
        for i in 0..USERS / GROUPS {
            let _ = write!(y, "u{}, ", (g * 37 + i * 101) % USERS);
        }
        y.push_str("]\n");
    }
    y.push_str("rules:\n");
    let mut n = 0;
    rule(&mut y, "anonymous", "\"public/**\"", "pull", "allow");
    rule(&mut y, "authenticated", "\"${user}/**\"", "\"*\"", "allow");
    rule(
        &mut y,
        "authenticated",
        "\"mirror/*/cache\", \"base/**\"",
        "pull",
        "allow",
    );
    rule(&mut y, "\"user:admin\"", "\"**\"", "\"*\"", "allow");
    n += 4;
    for g in 0..GROUPS {
        let s = format!("\"group:g{g}\"");
        rule(
            &mut y,
            &s,
            &format!("\"team{g}/**\""),
            "pull, push",
            "allow",
        );
        rule(
            &mut y,
            &s,
            &format!("\"shared/team{g}-*\""),
            "pull",
            "allow",
        );
        rule(
            &mut y,
            &s,
            &format!("\"team{g}/prod/**\""),
            "delete",
            "deny",
        );
        n += 3;
    }
    for r in 0..96 {
        rule(
            &mut y,
            &format!("\"robot:bot{r}\""),
            "\"team*/prod/**\", \"**/secret\"",
            "push, delete",
            "deny",
        );
        n += 1;
    }
    let mut u = 0;
    while n < 1000 {
        rule(
            &mut y,
            &format!("\"user:u{}\"", u * 31 % USERS),
            &format!("\"projects/p{u}/**\", \"team{}/x\"", u % GROUPS),
            "\"*\"",
            "allow",
        );
        n += 1;
        u += 1;
    }
    y
}

/// 1,000 rules, all for `authenticated`, none indexable by first segment:
/// every decision must look at all of them.
fn worst() -> String {
    let mut y = String::from("rules:\n");
    for i in 0..1000 {
        rule(
            &mut y,
            "authenticated",
            &format!("\"*/area{i}/**\""),
            "pull, push",
            "allow",
        );
    }
    y
}

fn cases(rng: &mut Rng) -> Vec<(Principal, String, Action)> {
    (0..8192)
        .map(|_| {
            let who = match rng.below(10) {
                0 => Principal::Anonymous,
                1 => Principal::Robot {
                    name: format!("bot{}", rng.below(200)),
                    owner: format!("u{}", rng.below(USERS)),
                },
                _ => Principal::User(format!("u{}", rng.below(USERS))),
            };
            let repo = match rng.below(8) {
                0 => format!("public/lib{}", rng.below(100)),
                1 => format!("{}/tool", who.user_name().unwrap_or("anon")),
                2 => format!("team{}/prod/api", rng.below(GROUPS)),
                3 => format!("shared/team{}-docs", rng.below(GROUPS)),
                4 => format!("projects/p{}/web/v2", rng.below(1000)),
                5 => format!("mirror/m{}/cache", rng.below(10)),
                6 => format!("x{}/area{}/z", rng.below(50), rng.below(1000)),
                _ => format!("team{}/app{}", rng.below(GROUPS), rng.below(10)),
            };
            let action = Action::ALL[rng.below(4)];
            (who, repo, action)
        })
        .collect()
}

fn run(name: &str, text: &str) {
    let start = Instant::now();
    let policy = Policy::from_yaml(text, "bench.yml", 0).expect("valid policy");
    let load = start.elapsed();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let cases = cases(&mut rng);

    for (label, explain) in [("decide", true), ("allows", false)] {
        // Warm up, then measure.
        for (who, repo, action) in &cases {
            black_box(policy.allows(who, repo, *action));
        }
        let mut allowed = 0usize;
        let start = Instant::now();
        for i in 0..DECISIONS {
            let (who, repo, action) = &cases[i % cases.len()];
            let ok = if explain {
                black_box(policy.decide(black_box(who), black_box(repo), *action)).allowed
            } else {
                black_box(policy.allows(black_box(who), black_box(repo), *action))
            };
            allowed += usize::from(ok);
        }
        let elapsed = start.elapsed();
        let ns = elapsed.as_secs_f64() * 1e9 / DECISIONS as f64;
        println!(
            "{name:8} {label}: {ns:7.0} ns/decision, {:>10.0} decisions/s ({:.1}% allowed)",
            DECISIONS as f64 / elapsed.as_secs_f64(),
            allowed as f64 * 100.0 / DECISIONS as f64
        );
    }

    let start = Instant::now();
    let mut total = 0;
    for (who, _, _) in cases.iter().take(1000) {
        total += black_box(policy.pull_prefixes(who)).map_or(0, |p| p.len());
    }
    println!(
        "{name:8} pull_prefixes: {:.0} ns/call ({total} prefixes); load: {:.1} ms for {} rules, {} bytes",
        start.elapsed().as_secs_f64() * 1e9 / 1000.0,
        load.as_secs_f64() * 1e3,
        policy.rule_count(),
        text.len()
    );
}

fn main() {
    println!("{DECISIONS} decisions over {USERS} users in {GROUPS} groups");
    run("typical", &typical());
    run("worst", &worst());
}
