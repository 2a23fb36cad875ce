//! Authorization: who may pull, push, delete and list the catalog, and where.
//!
//! A [`Policy`] is read from the `access` section of `config.yml`, or from the
//! file that `access.path` names (then held by a [`PolicyStore`], which reloads
//! it when it changes):
//!
//! ```yaml
//! groups:
//!   devs: [alice, bob]
//! immutable: ["release/**"]
//! rules:
//!   - subjects: [anonymous]
//!     repositories: ["public/**"]
//!     actions: [pull]
//!   - subjects: ["group:devs"]
//!     repositories: ["team/**"]
//!     actions: [pull, push]
//!   - subjects: [authenticated]
//!     repositories: ["${user}/**"]
//!     actions: [pull, push, delete]
//!   - subjects: ["user:bob"]
//!     repositories: ["team/secret/**"]
//!     actions: [pull, push]
//!     effect: deny
//!   - subjects: [authenticated]
//!     actions: [catalog]
//! ```
//!
//! # Meaning
//!
//! - **Subjects**: `anonymous`, `authenticated` (every signed-in user and
//!   robot), `user:NAME`, `group:NAME` (a group defined under `groups`) and
//!   `robot:NAME`.
//! - **Repositories**: patterns in the registry's one dialect
//!   ([`portcullis_types::pattern`], which robot scopes use too): `*` is one path
//!   segment, `**` any number (`team/**` matches `team/app` and `team/a/b` but
//!   not `team`; `**` alone matches everything), and `${user}` the caller's
//!   user name (a robot's owner's name).
//! - **Actions**: `pull`, `push`, `delete`, `catalog`, and `*` for all four.
//! - **Effects**: `effect` is `allow` (the default) or `deny`. Any matching
//!   deny wins over any allow, whatever their order; nothing is allowed by
//!   default. A rule may carry a free-text `description`.
//! - **Anonymous extends to everyone.** What an `anonymous` allow rule
//!   permits, every signed-in user and robot may do too, so logging in never
//!   breaks a public pull. A deny rule naming `anonymous` binds only anonymous
//!   callers ("not without signing in"); to forbid something to everyone,
//!   deny it to both `anonymous` and `authenticated`. A deny naming a user, a
//!   group or `authenticated` wins over an anonymous allow as over any other.
//! - **Catalog** is registry-wide: a rule grants or denies it only if it
//!   covers every repository, that is, it has no `repositories` (allowed only
//!   when `catalog` is its sole action) or `**` among them. So `actions: ["*"]`
//!   on `team/**` does not include `catalog`, and naming `catalog` in a rule
//!   limited to some repositories is an error. The catalog itself lists only
//!   what the caller may pull ([`Policy::pull_prefixes`], [`Policy::allows`]).
//! - **Robots**: a robot (`Robot { name, owner }`) may do what its owner may
//!   do, minus what a deny rule naming `robot:NAME` forbids. Allow rules
//!   naming a robot cannot widen it beyond its owner, so they have no effect
//!   (the policy loads, with a warning). The robot's own scope list is applied
//!   by the caller, on top of this decision.
//! - **Immutable**: in a repository matching an `immutable` pattern, an
//!   existing tag may not be moved to another manifest or deleted, by anyone,
//!   admins included; pushing a new tag (or the same manifest again) needs
//!   only `push`. [`Policy::is_immutable`] answers; the caller enforces it.
//! - With no `access` section, [`Policy::allow_all`] applies: every
//!   authenticated caller may do everything, anonymous callers nothing.
//!
//! Rules are indexed by subject and by the first segment of their patterns,
//! and user → groups is a hash map, so a decision touches only the few rules
//! that could match, whatever the size of the policy.

mod describe;
mod engine;
mod parse;
mod pattern;
mod store;
mod words;
mod yaml;

#[cfg(test)]
mod tests;

use std::fmt;

pub use engine::Policy;
pub use store::{PolicyStore, check_file};

/// Who is asking, as far as the policy is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Principal {
    /// No credentials.
    Anonymous,
    /// A signed-in user.
    User(String),
    /// A signed-in user whose identity provider also names groups (a
    /// directory's, say): the policy's groups of those names apply as if the
    /// policy listed the user in them. Names it does not define are ignored.
    Member { name: String, groups: Vec<String> },
    /// A robot account (personal access token) acting for `owner`.
    Robot {
        /// The robot's name, as in `robot:NAME`.
        name: String,
        /// The user it acts for; its rights never exceed theirs.
        owner: String,
    },
}

impl Principal {
    /// The user whose rules apply: the user, or the robot's owner.
    #[must_use]
    pub fn user_name(&self) -> Option<&str> {
        match self {
            Self::Anonymous => None,
            Self::User(name) | Self::Member { name, .. } => Some(name),
            Self::Robot { owner, .. } => Some(owner),
        }
    }
}

/// What a caller wants to do: the registry's one [`Action`] type, under the
/// name the policy has always used.
pub use portcullis_types::Action as PolicyAction;
pub use portcullis_types::{Action, UnknownAction};

/// Whether a rule allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Effect {
    #[default]
    Allow,
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
        })
    }
}

/// The rule behind a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    /// The file the rule is in (or the name the caller gave the config).
    pub source: String,
    /// The rule's line in that file (1-based).
    pub line: usize,
    /// The rule's position in `rules`, from 0 (`rules[index]`). Explanations
    /// number rules from 1: `rules[4]` is "rule 5".
    pub index: usize,
    pub effect: Effect,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule {} at {}:{}",
            self.index + 1,
            self.source,
            self.line
        )
    }
}

/// The answer to "may `who` do `action` on `repo`?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The deciding rule: the matching deny, else the first matching allow;
    /// `None` when no rule matched or a built-in policy decided.
    pub rule: Option<RuleRef>,
    /// One line, without secrets, such as `deny: rule 5 at access.yml:23
    /// (subjects user:bob, repositories team/secret/**) denies push on
    /// team/secret/x for user bob`.
    pub explanation: String,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explanation)
    }
}

/// A problem in a policy: where, what, and how to fix it.
///
/// Displayed as `access.yml:12: rules[3].subjects: unknown subject
/// `grup:devs`. Fix: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file (or the name the caller gave the config).
    pub source: String,
    /// The line (1-based) in that file, when known.
    pub line: Option<usize>,
    /// What is wrong, starting with the key's path (`rules[3].subjects: ...`).
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: ", self.source)?,
            None => write!(f, "{}: ", self.source)?,
        }
        write!(f, "{}. Fix: {}", self.message, self.fix)
    }
}

impl std::error::Error for PolicyError {}
