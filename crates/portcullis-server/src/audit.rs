//! The `audit` section as an event sink: its outputs opened, the chain
//! resumed from the file, pulls written as configured.

use std::path::Path;
use std::sync::Arc;

use portcullis_audit::{
    AuditSink, FileOutput, Output, Pulls, Settings, StdoutOutput, SyslogOutput,
};
use portcullis_config::{AuditPulls, Config, parse_pulls};

use crate::serve::ServeError;

/// The audit log's default file size before rotation: 100 MiB.
const MAX_BYTES: u64 = 100 << 20;
/// Rotated files kept by default.
const KEEP: usize = 10;

fn failed(key: &'static str) -> impl Fn(String) -> ServeError {
    move |message| ServeError::Config { key, message }
}

/// The audit sink of `config`, or `None` when no output is configured.
///
/// # Errors
/// A file or socket that cannot be opened, or a file whose last line is
/// not a sealed audit line (continuing would hide the damage).
pub fn sink(config: &Config) -> Result<Option<Arc<AuditSink>>, ServeError> {
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
    let sink = AuditSink::start(outputs, head, &settings)
        .map_err(|e| failed("audit")(format!("cannot start the audit writer: {e}")))?;
    Ok(Some(Arc::new(sink)))
}
