//! Reading audit files back: `audit verify` and `audit show`.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::chain::{Fault, Verifier, link};
use crate::output::{head_path, read_head};
use crate::record::Record;

/// The files in chain order: by the number of their first line (files
/// with no sealed first line go last, where verification names them).
///
/// # Errors
/// When a file cannot be read.
pub fn chain_order(files: &[PathBuf]) -> io::Result<Vec<PathBuf>> {
    let mut keyed = Vec::with_capacity(files.len());
    for f in files {
        let mut first = Vec::new();
        BufReader::new(open(f)?).read_until(b'\n', &mut first)?;
        let line = first.strip_suffix(b"\n").unwrap_or(&first);
        let seq = link(line).map_or(u64::MAX, |l| l.seq);
        keyed.push((seq, f.clone()));
    }
    keyed.sort();
    Ok(keyed.into_iter().map(|(_, f)| f).collect())
}

fn open(path: &Path) -> io::Result<File> {
    File::open(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// A verified run of files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub files: usize,
    pub lines: u64,
    /// The first line's number: 1 when the chain starts at the genesis,
    /// more when older files were removed (by retention, or by hand).
    pub first_seq: Option<u64>,
    /// Whether a head anchor was found and matched.
    pub anchored: bool,
}

/// The first bad line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub file: PathBuf,
    /// 1-based, within `file`.
    pub line: u64,
    pub fault: Fault,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.fault)
    }
}

/// Verifies `files` as one chain, in chain order. With `from_genesis`, the
/// first line must be the very first of the log.
///
/// # Errors
/// I/O errors; a broken chain is `Ok(Err(_))`.
pub fn verify(files: &[PathBuf], from_genesis: bool) -> io::Result<Result<Verified, Broken>> {
    let ordered = chain_order(files)?;
    let mut v = Verifier::new(from_genesis);
    let mut first_seq = None;
    let mut line = Vec::with_capacity(1024);
    for file in &ordered {
        let mut r = BufReader::with_capacity(256 * 1024, open(file)?);
        let mut n = 0u64;
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            n += 1;
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            if let Err(fault) = v.next_line(text) {
                return Ok(Err(Broken {
                    file: file.clone(),
                    line: n,
                    fault,
                }));
            }
            if first_seq.is_none() {
                first_seq = v.head().map(|h| h.seq);
            }
        }
    }
    let mut anchored = false;
    if let Some(last) = ordered.last()
        && let Some(anchor) = read_head(&head_path(last))?
    {
        if let Err(fault) = v.finish(&anchor) {
            return Ok(Err(Broken {
                file: last.clone(),
                line: 0,
                fault,
            }));
        }
        anchored = true;
    }
    Ok(Ok(Verified {
        files: ordered.len(),
        lines: v.lines(),
        first_seq,
        anchored,
    }))
}

/// Which records `audit show` prints.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub user: Option<String>,
    pub repo: Option<String>,
    /// RFC 3339 (UTC); records at or after it.
    pub since: Option<String>,
    pub event: Option<String>,
}

impl Filter {
    #[must_use]
    pub fn matches(&self, r: &Record) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        eq(&self.user, &r.identity)
            && eq(&self.repo, &r.repository)
            && self.event.as_ref().is_none_or(|e| r.event.starts_with(e))
            && self
                .since
                .as_ref()
                .is_none_or(|s| r.time.as_str() >= s.as_str())
    }
}

/// Reads every record of `files` in chain order that `filter` keeps, with
/// its line as written; lines that do not parse are skipped (`verify`
/// names them).
///
/// # Errors
/// When a file cannot be read.
pub fn show(
    files: &[PathBuf],
    filter: &Filter,
    mut each: impl FnMut(&Record, &str),
) -> io::Result<()> {
    for file in chain_order(files)? {
        for line in BufReader::new(open(&file)?).lines() {
            let line = line?;
            if let Ok(r) = serde_json::from_str::<Record>(&line)
                && filter.matches(&r)
            {
                each(&r, &line);
            }
        }
    }
    Ok(())
}

/// One record as a line for people.
#[must_use]
pub fn human(r: &Record) -> String {
    let mut s = format!("{} {:<15}", r.time, r.event);
    let mut push = |label: &str, v: &Option<String>| {
        if let Some(v) = v {
            s.push_str(&format!(" {label}={v}"));
        }
    };
    push("user", &r.identity);
    push("client", &r.client);
    push("repo", &r.repository);
    push("ref", &r.reference);
    push("digest", &r.digest);
    push("action", &r.action);
    push("method", &r.method);
    push("reason", &r.reason);
    push("rule", &r.rule);
    push("command", &r.command);
    push("detail", &r.detail);
    if let Some(c) = r.count {
        s.push_str(&format!(" count={c}"));
    }
    if !r.scopes.is_empty() {
        s.push_str(&format!(" scopes={}", r.scopes.join(",")));
    }
    s
}
