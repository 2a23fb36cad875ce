//! Who is making a request: the result of authentication.
//!
//! Authentication backends (htpasswd, tokens, ...) turn credentials into an
//! [`Identity`]; authorization only ever looks at this type, never at raw
//! strings from a request.

use std::fmt;

/// Longest accepted user name, in bytes.
pub const MAX_USER_NAME_LEN: usize = 255;

/// Why a string is not a valid [`UserName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUserName {
    /// The name is the empty string.
    #[error("user name is empty")]
    Empty,
    /// The name is longer than [`MAX_USER_NAME_LEN`] bytes.
    #[error("user name is {len} bytes long; the limit is {MAX_USER_NAME_LEN}")]
    TooLong {
        /// Length of the rejected name, in bytes.
        len: usize,
    },
    /// The name contains `:` (which separates user and password in Basic auth
    /// and htpasswd files) or a control character.
    #[error(
        "user name contains the forbidden character {0:?} (':' and control characters are not allowed)"
    )]
    ForbiddenChar(char),
}

/// A validated user name: non-empty, at most 255 bytes, without `:` or
/// control characters.
///
/// Because `:` and control characters can never appear, they are safe to use
/// as separators next to a user name (in htpasswd lines, Basic auth, and
/// hash inputs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

impl UserName {
    /// Validates `s` and wraps it.
    ///
    /// # Errors
    /// Returns [`InvalidUserName`] if `s` is empty, too long, or contains `:`
    /// or a control character.
    pub fn new(s: &str) -> Result<Self, InvalidUserName> {
        if s.is_empty() {
            return Err(InvalidUserName::Empty);
        }
        if s.len() > MAX_USER_NAME_LEN {
            return Err(InvalidUserName::TooLong { len: s.len() });
        }
        if let Some(c) = s.chars().find(|&c| c == ':' || c.is_control()) {
            return Err(InvalidUserName::ForbiddenChar(c));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for UserName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for UserName {
    type Err = InvalidUserName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// The authenticated principal of a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// No credentials were presented.
    Anonymous,
    /// A user whose credentials were verified.
    User(User),
    /// A robot account (personal access token) acting for its owner.
    Robot(RobotIdentity),
}

/// A verified user: the name, and the groups the identity provider that
/// verified them knows them by (none for htpasswd; a directory's for LDAP).
/// Policy groups of those names apply to the user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct User {
    pub name: UserName,
    pub groups: Vec<String>,
}

impl User {
    /// A user without provider groups.
    #[must_use]
    pub fn named(name: UserName) -> Self {
        Self {
            name,
            groups: Vec::new(),
        }
    }
}

impl std::ops::Deref for User {
    type Target = UserName;

    fn deref(&self) -> &UserName {
        &self.name
    }
}

/// A verified robot token: its name, owner and the scope it was given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RobotIdentity {
    pub name: String,
    pub owner: UserName,
    /// Patterns in the policy's dialect, compiled when the store was read.
    pub repositories: crate::robots::RobotRepos,
    pub actions: Vec<portcullis_types::ScopeAction>,
}

impl RobotIdentity {
    /// The login name, `<owner>+<name>`.
    #[must_use]
    pub fn login(&self) -> String {
        format!(
            "{}{}{}",
            self.owner,
            crate::robots::LOGIN_SEPARATOR,
            self.name
        )
    }

    /// Whether `action` on `repo` is inside the scope the robot was given
    /// (`${user}` in a pattern is the owner).
    #[must_use]
    pub fn permits(&self, repo: &str, action: portcullis_types::Action) -> bool {
        crate::robots::permits(
            &self.repositories,
            &self.actions,
            self.owner.as_str(),
            repo,
            action,
        )
    }
}

impl Identity {
    /// A verified user without provider groups.
    #[must_use]
    pub fn user_named(name: UserName) -> Self {
        Self::User(User::named(name))
    }

    /// The user name, if this is an authenticated user (not a robot).
    #[must_use]
    pub fn user(&self) -> Option<&UserName> {
        match self {
            Self::Anonymous | Self::Robot(_) => None,
            Self::User(u) => Some(&u.name),
        }
    }

    /// The name used as a token's `sub` and in logs: the user, the robot's
    /// login, or empty for anonymous.
    #[must_use]
    pub fn subject(&self) -> String {
        match self {
            Self::Anonymous => String::new(),
            Self::User(u) => u.as_str().to_owned(),
            Self::Robot(r) => r.login(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in [
            "alice",
            "bob.smith@example.com",
            "ünïcødé",
            "with space",
            "#x",
        ] {
            let name = UserName::new(ok).unwrap();
            assert_eq!(name.as_str(), ok);
            assert_eq!(name.to_string(), ok);
        }
        assert!(UserName::new(&"a".repeat(MAX_USER_NAME_LEN)).is_ok());
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(UserName::new(""), Err(InvalidUserName::Empty));
        assert_eq!(
            UserName::new(&"a".repeat(256)),
            Err(InvalidUserName::TooLong { len: 256 })
        );
        assert_eq!(
            UserName::new("a:b"),
            Err(InvalidUserName::ForbiddenChar(':'))
        );
        assert_eq!(
            UserName::new("a\nb"),
            Err(InvalidUserName::ForbiddenChar('\n'))
        );
        assert_eq!(
            UserName::new("a\0"),
            Err(InvalidUserName::ForbiddenChar('\0'))
        );
        assert_eq!(
            UserName::new("a\u{7f}"),
            Err(InvalidUserName::ForbiddenChar('\u{7f}'))
        );
    }

    #[test]
    fn identity_user() {
        let alice = UserName::new("alice").unwrap();
        assert_eq!(Identity::user_named(alice.clone()).user(), Some(&alice));
        assert_eq!(Identity::Anonymous.user(), None);
    }
}
