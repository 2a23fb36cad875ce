//! The one action vocabulary: what the access policy decides ([`Action`]),
//! and the entries of the action lists that token scopes
//! (`repository:NAME:pull,push`), token grants and robot scopes carry
//! ([`ScopeAction`]). Strings become these types once, where they enter
//! (a scope parameter, a verified token, a robot record, a policy file).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// Something a request does to a repository, or to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Read manifests, blobs and tags.
    Pull,
    /// Upload blobs and manifests, create and move tags.
    Push,
    /// Delete manifests, blobs and tags.
    Delete,
    /// List the repository catalog (registry-wide).
    Catalog,
}

impl Action {
    /// Every action.
    pub const ALL: [Self; 4] = [Self::Pull, Self::Push, Self::Delete, Self::Catalog];

    /// The action as policies, scopes and logs write it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pull => "pull",
            Self::Push => "push",
            Self::Delete => "delete",
            Self::Catalog => "catalog",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for an unknown action name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action `{0}`: use pull, push, delete or catalog")]
pub struct UnknownAction(pub String);

/// Parses an action name in any case (`Delete` is `delete`), as a policy
/// may write it.
impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

/// One entry of an action list as the Docker token spec writes it, in a
/// requested scope, a token's grant or a robot's scope: `pull`, `push`,
/// `delete`, or `*` for every action. The catalog is asked for as
/// `registry:catalog:*`, so `catalog` is not an entry.
///
/// Ordered as the texts are, so a set of them iterates in the order a set
/// of the strings did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeAction {
    One(Action),
    /// `*`.
    All,
}

/// The repository actions `*` stands for in a repository scope.
const REPOSITORY_ACTIONS: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];

impl ScopeAction {
    /// The entries a scope may hold.
    pub const ALL: [Self; 4] = [
        Self::One(Action::Pull),
        Self::One(Action::Push),
        Self::One(Action::Delete),
        Self::All,
    ];

    /// The entry `text` (exactly, in lower case, as the token spec writes
    /// it); `None` for any other text, which a token service ignores.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == text)
    }

    /// The entry as written.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::One(a) => a.as_str(),
            Self::All => "*",
        }
    }

    /// Whether this entry grants `action`.
    #[must_use]
    pub fn covers(self, action: Action) -> bool {
        match self {
            Self::One(a) => a == action,
            Self::All => true,
        }
    }

    /// The repository actions this entry stands for (`*`: pull, push and
    /// delete).
    #[must_use]
    pub fn repository_actions(self) -> &'static [Action] {
        match self {
            Self::One(Action::Pull) => &REPOSITORY_ACTIONS[0..1],
            Self::One(Action::Push) => &REPOSITORY_ACTIONS[1..2],
            Self::One(Action::Delete) => &REPOSITORY_ACTIONS[2..3],
            Self::One(Action::Catalog) => &[],
            Self::All => &REPOSITORY_ACTIONS,
        }
    }

    /// `list` as written, joined by `sep` (`pull,push`).
    #[must_use]
    pub fn join(list: &[Self], sep: &str) -> String {
        let words: Vec<&str> = list.iter().map(|a| a.as_str()).collect();
        words.join(sep)
    }
}

impl fmt::Display for ScopeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Ord for ScopeAction {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for ScopeAction {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The error for a text that is not a [`ScopeAction`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid action `{0}`: use pull, push, delete or *")]
pub struct UnknownScopeAction(pub String);

impl FromStr for ScopeAction {
    type Err = UnknownScopeAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownScopeAction(s.to_owned()))
    }
}

impl serde::Serialize for ScopeAction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ScopeAction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_in_any_case() {
        assert_eq!("Delete".parse::<Action>(), Ok(Action::Delete));
        assert_eq!("catalog".parse::<Action>(), Ok(Action::Catalog));
        assert!("drop".parse::<Action>().is_err());
        for a in Action::ALL {
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
        }
    }

    #[test]
    fn scope_actions_are_the_token_words() {
        for a in ScopeAction::ALL {
            assert_eq!(ScopeAction::parse(a.as_str()), Some(a));
        }
        for other in ["catalog", "Pull", "", "**", "read"] {
            assert_eq!(ScopeAction::parse(other), None, "{other}");
        }
        assert!(ScopeAction::All.covers(Action::Catalog));
        assert!(!ScopeAction::One(Action::Pull).covers(Action::Push));
        assert_eq!(
            ScopeAction::All.repository_actions(),
            [Action::Pull, Action::Push, Action::Delete]
        );
        assert_eq!(
            ScopeAction::One(Action::Push).repository_actions(),
            [Action::Push]
        );
    }

    #[test]
    fn scope_actions_sort_as_their_texts() {
        let mut typed = ScopeAction::ALL.to_vec();
        typed.sort();
        let mut texts: Vec<&str> = ScopeAction::ALL.iter().map(|a| a.as_str()).collect();
        texts.sort_unstable();
        let typed: Vec<&str> = typed.iter().map(|a| a.as_str()).collect();
        assert_eq!(typed, texts);
    }
}
