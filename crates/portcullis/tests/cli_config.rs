//! `portcullis config check`: every example config in `docs/examples` is
//! valid, and a typo is reported with the key, its line and the closest
//! valid key. Runs everywhere (no root, no daemon).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// `portcullis config check --config PATH`, run from the repository root
/// (example configs use paths relative to it).
fn config_check(path: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(["config", "check", "--config"])
        .arg(path)
        .current_dir(repo_root());
    // Only the file may configure the registry under check.
    common::without_registry_env(&mut cmd);
    common::run(&mut cmd, None, Duration::from_secs(60))
}

/// Whether `text` mentions line `line` the way a diagnostic does:
/// `line 7`, `line: 7`, `:7:` or `:7 ` (and not as part of `17` or `70`).
fn mentions_line(text: &str, line: usize) -> bool {
    let n = line.to_string();
    let lower = text.to_lowercase();
    let bytes = lower.as_bytes();
    lower.match_indices(&n).any(|(at, _)| {
        let after = bytes.get(at + n.len()).copied();
        if after.is_some_and(|b| b.is_ascii_digit()) {
            return false;
        }
        let before = lower[..at].trim_end();
        before.ends_with("line") || before.ends_with("line:") || before.ends_with(':')
    })
}

#[test]
fn every_example_config_is_valid() {
    let examples = repo_root().join("docs/examples");
    let mut configs: Vec<PathBuf> = std::fs::read_dir(&examples)
        .unwrap_or_else(|e| panic!("read {}: {e}", examples.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    configs.sort();
    assert!(
        !configs.is_empty(),
        "no *.yml in {}: the examples are part of the docs",
        examples.display()
    );
    let mut failures = Vec::new();
    for config in &configs {
        let out = config_check(config);
        if out.status.code() != Some(0) {
            failures.push(format!(
                "{} -> {}\n{}",
                config.display(),
                out.status,
                common::combined_output(&out)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "`portcullis config check` rejected example configs:\n{}",
        failures.join("\n")
    );
}

/// A typo in a key (line 10, under `http`); the rest of the file is valid.
const TYPO_CONFIG: &str = "\
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: ./data
  delete:
    enabled: true
http:
  adress: 127.0.0.1:5000
";
const TYPO_LINE: usize = 10;

fn check_typo() -> (Output, String) {
    let dir = common::temp_dir();
    let path = dir.path().join("config.yml");
    std::fs::write(&path, TYPO_CONFIG).expect("write config");
    let out = config_check(&path);
    let printed = common::combined_output(&out);
    (out, printed)
}

#[test]
fn unknown_key_fails_naming_key_and_line() {
    let (out, printed) = check_typo();
    assert_eq!(
        out.status.code(),
        Some(1),
        "config check of a config with an unknown key should exit 1:\n{printed}"
    );
    assert!(
        printed.contains("adress"),
        "the unknown key is not named:\n{printed}"
    );
    assert!(
        mentions_line(&printed, TYPO_LINE),
        "line {TYPO_LINE} is not mentioned:\n{printed}"
    );
}

#[test]
fn unknown_key_suggests_the_closest_valid_key() {
    let (out, printed) = check_typo();
    assert_eq!(out.status.code(), Some(1), "{printed}");
    // "addr" appears nowhere else in the file or in "adress".
    assert!(
        printed.contains("addr"),
        "no suggestion of `addr` for `adress`:\n{printed}"
    );
}

#[test]
fn mentions_line_matches_diagnostic_forms() {
    assert!(mentions_line("config.yml:10:3: unknown key", 10));
    assert!(mentions_line(
        "unknown key `adress` at line 10, column 3",
        10
    ));
    assert!(mentions_line("Line: 10", 10));
    assert!(!mentions_line("config.yml:100:3", 10));
    assert!(!mentions_line("/tmp/x10y/config.yml: bad", 10));
}

/// Copies `docs/examples` into `dir/docs/examples`, so commands written for
/// the repository root can run there without writing into the repository.
fn copy_examples(dir: &Path) {
    let to = dir.join("docs/examples");
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(repo_root().join("docs/examples")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn the_access_teams_example_command_works_as_written() {
    let text = std::fs::read_to_string(repo_root().join("docs/examples/access-teams.yml")).unwrap();
    // The command: comment lines from the first `REGISTRY_...=` or
    // `portcullis` one, joined across trailing backslashes.
    let mut command = String::new();
    for line in text.lines().map(|l| l.trim_start_matches('#').trim()) {
        if command.is_empty() && !(line.starts_with("REGISTRY_") || line.starts_with("portcullis "))
        {
            continue;
        }
        command.push_str(line.trim_end_matches('\\'));
        command.push(' ');
        if !line.ends_with('\\') {
            break;
        }
    }
    let words: Vec<String> = command
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_owned())
        .collect();
    let at = words
        .iter()
        .position(|w| w == "portcullis")
        .unwrap_or_else(|| panic!("no portcullis command in access-teams.yml: {command}"));
    let dir = common::temp_dir();
    copy_examples(dir.path());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    cmd.args(&words[at + 1..]).current_dir(dir.path());
    common::without_registry_env(&mut cmd);
    for assignment in &words[..at] {
        let (k, v) = assignment.split_once('=').unwrap();
        cmd.env(k, v);
    }
    let out = common::run(&mut cmd, None, Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(0),
        "the command in access-teams.yml fails: {command}\n{}",
        common::combined_output(&out)
    );
    assert!(dir.path().join("data/portcullis/robots.json").exists());
}

#[test]
fn config_md_counts_the_warnings_of_the_distribution_example_right() {
    let doc = std::fs::read_to_string(repo_root().join("docs/CONFIG.md")).unwrap();
    let claim = doc
        .split("accepts with ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("CONFIG.md says how many warnings config-distribution.yml gives");
    let claimed = ["none", "one", "two", "three", "four", "five", "six"]
        .iter()
        .position(|w| *w == claim)
        .unwrap_or_else(|| panic!("not a number word: {claim}"));
    let out = config_check(&repo_root().join("docs/examples/config-distribution.yml"));
    let printed = common::combined_output(&out);
    let warnings = printed
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .count();
    assert_eq!(
        warnings, claimed,
        "CONFIG.md says {claim}; config check printed:\n{printed}"
    );
}
