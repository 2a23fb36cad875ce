//! Where sealed lines go: a file with size rotation and retention, stdout,
//! or syslog. The writer thread owns the outputs, so none needs a lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::chain::{self, Head};

/// One destination of the sealed lines.
pub trait Output: Send {
    fn name(&self) -> &'static str;

    /// Writes `lines` (each ending in a newline); `head` is the chain after
    /// the last of them.
    ///
    /// # Errors
    /// The destination's I/O error.
    fn write(&mut self, lines: &str, head: &Head) -> io::Result<()>;

    /// Brings what lags behind the lines (the file's head anchor) up to
    /// date: called when the writer is idle, before a flush is answered,
    /// and at the end.
    ///
    /// # Errors
    /// The destination's I/O error.
    fn settle(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How often, at most, a busy writer rewrites the head anchor. An anchor
/// that lags the last line is still on the chain (verify accepts it); it
/// only cannot show that the lines after it were cut.
const ANCHOR_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The audit file: `path` is written, and renamed to
/// `path.<UTC time>` once it passes `max_bytes`; the newest `keep` rotated
/// files are kept. `path.head` anchors the chain's last line, so a cut
/// tail is caught too.
#[derive(Debug)]
pub struct FileOutput {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: usize,
    /// The head not yet written to the anchor, and when it last was.
    unanchored: Option<Head>,
    anchored_at: Option<std::time::Instant>,
}

/// The anchor file next to an audit file.
#[must_use]
pub fn head_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".head");
    PathBuf::from(p)
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// The last line of a file (reading at most its last 64 KiB).
fn last_line(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let from = len.saturating_sub(64 * 1024);
    f.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)?;
    let text = tail.strip_suffix(b"\n").unwrap_or(&tail);
    Ok(text
        .rsplit(|&b| b == b'\n')
        .next()
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec))
}

/// Reads a head anchor: `{"seq":N,"hash":"…"}`.
///
/// # Errors
/// When the file cannot be read; a malformed anchor is `Ok(None)`.
pub fn read_head(path: &Path) -> io::Result<Option<Head>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let v: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(_) => return Ok(None),
    };
    Ok(match (v["seq"].as_u64(), v["hash"].as_str()) {
        (Some(seq), Some(hash)) => Some(Head {
            seq,
            hash: hash.to_owned(),
        }),
        _ => None,
    })
}

impl FileOutput {
    /// Opens (or creates, mode 0600) the audit file.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<Self> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            file,
            size,
            max_bytes: max_bytes.max(4096),
            keep,
            unanchored: None,
            anchored_at: None,
        })
    }

    /// Where the chain stands in this file: after its last line, else at
    /// its anchor (the file was just rotated), else at the genesis.
    ///
    /// # Errors
    /// When the file's last line is not a sealed line, so continuing would
    /// hide the damage: the message says what to do.
    pub fn head(&self) -> io::Result<Head> {
        if let Some(line) = last_line(&self.path)? {
            let l = chain::link(&line).ok_or_else(|| {
                io::Error::other(format!(
                    "{}: the last line is not a sealed audit line; run `portcullis audit verify {}` and move the file aside to start a new chain",
                    self.path.display(),
                    self.path.display()
                ))
            })?;
            return Ok(Head {
                seq: l.seq,
                hash: l.hash.to_owned(),
            });
        }
        Ok(read_head(&head_path(&self.path))?.unwrap_or_default())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let stamp = time::OffsetDateTime::now_utc();
        let fmt = time::macros::format_description!(
            "[year][month][day]T[hour][minute][second].[subsecond digits:6]Z"
        );
        let name = format!(
            "{}.{}",
            self.path.display(),
            stamp.format(&fmt).unwrap_or_default()
        );
        self.file.sync_data()?;
        fs::rename(&self.path, &name)?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        self.prune()
    }

    /// Removes rotated files beyond the newest `keep`.
    fn prune(&self) -> io::Result<()> {
        let mut rotated = rotated_files(&self.path)?;
        let excess = rotated.len().saturating_sub(self.keep);
        for old in rotated.drain(..excess) {
            fs::remove_file(old)?;
        }
        Ok(())
    }
}

/// The rotated files of `path`, oldest first.
///
/// # Errors
/// When the directory cannot be read.
pub fn rotated_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let Some(base) = base else {
        return Ok(Vec::new());
    };
    let prefix = format!("{base}.");
    let mut out: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix(&prefix)?;
            (rest.len() > 1 && rest.as_bytes()[0].is_ascii_digit() && rest.ends_with('Z'))
                .then(|| dir.join(&name))
        })
        .collect();
    out.sort();
    Ok(out)
}

impl Output for FileOutput {
    fn name(&self) -> &'static str {
        "file"
    }

    fn write(&mut self, lines: &str, head: &Head) -> io::Result<()> {
        self.file.write_all(lines.as_bytes())?;
        self.size += lines.len() as u64;
        self.unanchored = Some(head.clone());
        if self.size >= self.max_bytes {
            // A fresh file resumes the chain from the anchor.
            self.settle()?;
            self.rotate()?;
        } else if self.anchored_at.is_none_or(|t| t.elapsed() >= ANCHOR_EVERY) {
            self.settle()?;
        }
        Ok(())
    }

    fn settle(&mut self) -> io::Result<()> {
        let Some(head) = self.unanchored.take() else {
            return Ok(());
        };
        let anchor = format!(r#"{{"seq":{},"hash":"{}"}}"#, head.seq, head.hash);
        let tmp = head_path(&self.path).with_extension("head.tmp");
        fs::write(&tmp, anchor)?;
        fs::rename(&tmp, head_path(&self.path))?;
        self.anchored_at = Some(std::time::Instant::now());
        Ok(())
    }
}

/// Lines to standard output, for a log collector.
#[derive(Debug, Default)]
pub struct StdoutOutput;

impl Output for StdoutOutput {
    fn name(&self) -> &'static str {
        "stdout"
    }

    fn write(&mut self, lines: &str, _head: &Head) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(lines.as_bytes())?;
        out.flush()
    }
}

/// Lines to the local syslog socket, one datagram each, facility `auth`
/// (RFC 3164 framing, as `logger` sends).
#[derive(Debug)]
pub struct SyslogOutput {
    socket: UnixDatagram,
    tag: String,
}

impl SyslogOutput {
    /// Connects to `socket` (usually `/dev/log`).
    ///
    /// # Errors
    /// When the socket cannot be reached.
    pub fn connect(socket: &Path) -> io::Result<Self> {
        let s = UnixDatagram::unbound()?;
        s.connect(socket)?;
        Ok(Self {
            socket: s,
            tag: format!("portcullis[{}]", std::process::id()),
        })
    }
}

impl Output for SyslogOutput {
    fn name(&self) -> &'static str {
        "syslog"
    }

    fn write(&mut self, lines: &str, _head: &Head) -> io::Result<()> {
        // facility auth (4) × 8 + severity info (6)
        for line in lines.lines() {
            let msg = format!("<38>{}: {line}", self.tag);
            self.socket.send(msg.as_bytes())?;
        }
        Ok(())
    }
}
