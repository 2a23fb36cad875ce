//! A robot's scope: its repository patterns, in the access policy's dialect
//! ([`portcullis_types::pattern`]), and its actions.
//!
//! Patterns are stored as their texts and compiled when a record is read,
//! so every login reuses the compiled patterns of the loaded record (a clone
//! of [`RobotRepos`] is a reference count) and a match allocates nothing.

use std::sync::Arc;

use portcullis_types::pattern::{PatternError, RepoPattern};
use portcullis_types::{Action, ScopeAction};
use serde::{Deserialize, Serialize};

/// Longest repository pattern a robot may be given, in bytes.
pub(super) const MAX_PATTERN_LEN: usize = 255;

/// One stored pattern: compiled, or (written by an older version, whose
/// dialect was laxer) refused by today's compiler, so it matches nothing,
/// as it matched no valid repository name before either.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Stored {
    Compiled(RepoPattern),
    Refused(Box<str>),
}

impl Stored {
    fn text(&self) -> &str {
        match self {
            Self::Compiled(p) => p.text(),
            Self::Refused(text) => text,
        }
    }
}

/// A robot's repository patterns, in the order given; stored as a list of
/// their texts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RobotRepos(Arc<[Stored]>);

impl RobotRepos {
    /// Compiles `texts`, dropping repeats.
    ///
    /// # Errors
    /// The first pattern that is too long or does not compile: the error
    /// names it, says what is wrong and how to fix it.
    pub fn compile<S: AsRef<str>>(texts: &[S]) -> Result<Self, PatternError> {
        let mut out: Vec<Stored> = Vec::new();
        for text in texts {
            let text = text.as_ref();
            if text.len() > MAX_PATTERN_LEN {
                return Err(PatternError {
                    message: format!("repository pattern `{text}` is {} bytes long", text.len()),
                    fix: format!("use at most {MAX_PATTERN_LEN} characters"),
                });
            }
            let pattern = RepoPattern::compile(text)?;
            if !out.iter().any(|p| p.text() == text) {
                out.push(Stored::Compiled(pattern));
            }
        }
        Ok(Self(out.into()))
    }

    /// How many patterns there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The patterns as written.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(Stored::text)
    }

    /// The patterns as written, joined by `sep`.
    #[must_use]
    pub fn join(&self, sep: &str) -> String {
        self.texts().collect::<Vec<_>>().join(sep)
    }

    /// Whether some pattern matches `repo`, `${user}` standing for `owner`.
    #[must_use]
    pub fn matches(&self, repo: &str, owner: &str) -> bool {
        self.0.iter().any(|p| match p {
            Stored::Compiled(p) => p.matches_name(repo, Some(owner)),
            Stored::Refused(_) => false,
        })
    }
}

impl Serialize for RobotRepos {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.texts())
    }
}

impl<'de> Deserialize<'de> for RobotRepos {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let texts = Vec::<String>::deserialize(deserializer)?;
        let stored = texts
            .into_iter()
            .map(|text| match RepoPattern::compile(&text) {
                Ok(p) => Stored::Compiled(p),
                Err(e) => {
                    tracing::warn!(
                        pattern = %text,
                        problem = %e,
                        "a stored robot repository pattern matches nothing"
                    );
                    Stored::Refused(text.into())
                }
            })
            .collect();
        Ok(Self(stored))
    }
}

/// Whether a robot of `owner` whose scope is `repositories` and `actions`
/// may do `action` on `repo`. The caller must also check that the owner may
/// do it now.
pub(crate) fn permits(
    repositories: &RobotRepos,
    actions: &[ScopeAction],
    owner: &str,
    repo: &str,
    action: Action,
) -> bool {
    actions.iter().any(|a| a.covers(action)) && repositories.matches(repo, owner)
}
