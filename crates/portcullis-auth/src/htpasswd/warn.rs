//! What is wrong with individual htpasswd lines.
//!
//! A line that cannot be used disables the user it names (or, if it names
//! nobody, is skipped); every other user still loads. Each problem becomes an
//! [`HtpasswdWarning`] that names the file, the line, the user, the cause and
//! the command that fixes it, for the startup log and `config check` alike.

use std::fmt;
use std::path::PathBuf;

use super::scheme::{Scheme, Unusable};

/// One problem with one line of an htpasswd file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtpasswdWarning {
    /// The file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// The user the line names, when it names a valid one.
    pub user: Option<String>,
    /// What is wrong.
    pub problem: LineProblem,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineProblem {
    /// The user loaded, but the hash scheme is weak.
    Weak(Scheme),
    /// The hash cannot be used: the user is disabled (cannot log in).
    Disabled(Unusable),
    /// The line names no valid user and was ignored.
    Skipped(String),
    /// The user was already listed on an earlier line, which this one overrides.
    Duplicate {
        /// The overridden line.
        earlier_line: usize,
    },
}

impl HtpasswdWarning {
    /// Whether this line leaves its user unable to log in.
    #[must_use]
    pub fn disables_user(&self) -> bool {
        matches!(self.problem, LineProblem::Disabled(_))
    }
}

impl fmt::Display for HtpasswdWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        let line = self.line;
        let user = self.user.as_deref().unwrap_or("USER");
        write!(f, "htpasswd file {path}, line {line}: ")?;
        match &self.problem {
            LineProblem::Weak(scheme) => write!(
                f,
                "user {user:?} has a {} password hash, which is weak; \
                 rehash it with `htpasswd -B {path} {user}`",
                scheme.describe()
            ),
            LineProblem::Disabled(why) => write!(
                f,
                "user {user:?} {why}, so {user:?} cannot log in (the other users are not \
                 affected); rehash it with `htpasswd -B {path} {user}` or `portcullis user add {user}`"
            ),
            LineProblem::Skipped(why) => write!(
                f,
                "{why}; the line is ignored. Fix or delete it: entries are `user:hash`, \
                 as written by `htpasswd -B {path} USER`"
            ),
            LineProblem::Duplicate { earlier_line } => write!(
                f,
                "user {user:?} is also listed on line {earlier_line}; this later line wins"
            ),
        }
    }
}

/// Why a user cannot log in, for the server's log: "user bob's htpasswd line
/// 3 uses SHA-1 ({SHA}, htpasswd -s), which portcullis refuses".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabledUser(pub(super) HtpasswdWarning);

impl DisabledUser {
    /// The full warning, with the file and the fix command.
    #[must_use]
    pub fn warning(&self) -> &HtpasswdWarning {
        &self.0
    }
}

impl fmt::Display for DisabledUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = &self.0;
        let user = w.user.as_deref().unwrap_or_default();
        let LineProblem::Disabled(why) = &w.problem else {
            return write!(f, "{w}");
        };
        write!(
            f,
            "user {user}'s htpasswd line {} {why}; rehash it with `htpasswd -B {} {user}`",
            w.line,
            w.path.display()
        )
    }
}
