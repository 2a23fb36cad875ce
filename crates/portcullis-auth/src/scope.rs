//! Token scopes (`repository:team/app:pull,push`, `registry:catalog:*`) as
//! the Docker token spec writes them, and the access granted from them.
//! Action texts become [`ScopeAction`]s here, once: an entry the spec does
//! not define is dropped, as a token service must ignore it.

use std::collections::BTreeSet;

use portcullis_types::{Action, ScopeAction};

use crate::token::ResourceAccess;

/// One requested scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `repository`, `registry`, ... (a `(class)` suffix is dropped).
    pub kind: String,
    pub name: String,
    /// The entries the spec defines; others were dropped.
    pub actions: BTreeSet<ScopeAction>,
}

/// Why a scope string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope `{0}` is malformed; expected `type:name:action[,action]`")]
    Malformed(String),
    /// A `repository` scope whose name no repository can have: nothing is
    /// signed for it, so a token never names `a/../b` or `a/**`.
    #[error("scope `{scope}` names no valid repository: {why}")]
    InvalidRepository { scope: String, why: String },
}

impl Scope {
    /// Parses `type[(class)]:name:actions`. The name may itself contain `:`
    /// (a registry host with a port), so the actions follow the last `:`.
    ///
    /// # Errors
    /// When a part is missing or empty.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let shown = || s.chars().take(200).collect::<String>();
        let err = || ScopeError::Malformed(shown());
        let (kind, rest) = s.split_once(':').ok_or_else(err)?;
        let (name, actions) = rest.rsplit_once(':').ok_or_else(err)?;
        let kind = kind.split('(').next().unwrap_or_default();
        if kind.is_empty() || name.is_empty() || s.len() > 1024 {
            return Err(err());
        }
        if kind == "repository"
            && let Err(e) = name.parse::<portcullis_types::RepoName>()
        {
            return Err(ScopeError::InvalidRepository {
                scope: shown(),
                why: e.to_string(),
            });
        }
        let actions: BTreeSet<ScopeAction> = actions
            .split(',')
            .filter_map(|a| ScopeAction::parse(a.trim()))
            .collect();
        Ok(Self {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions,
        })
    }

    /// Parses every scope of a request: repeated `scope=` parameters, each of
    /// which may hold several space-separated scopes (OAuth2 form).
    ///
    /// # Errors
    /// The first malformed scope.
    pub fn parse_all<'a>(
        values: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<Self>, ScopeError> {
        values
            .into_iter()
            .flat_map(str::split_whitespace)
            .map(Self::parse)
            .collect()
    }

    /// The spec form, `type:name:a,b`.
    #[must_use]
    pub fn to_spec(&self) -> String {
        let actions: Vec<&str> = self.actions.iter().map(|a| a.as_str()).collect();
        format!("{}:{}:{}", self.kind, self.name, actions.join(","))
    }
}

/// One resource of a verified token, its actions parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Granted {
    kind: String,
    name: String,
    actions: Vec<ScopeAction>,
}

/// Access granted by a verified token, looked up per request. The claims'
/// action texts are parsed once, when the token is verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants(std::sync::Arc<[Granted]>);

impl Grants {
    #[must_use]
    pub fn new(access: Vec<ResourceAccess>) -> Self {
        let granted: Vec<Granted> = access
            .into_iter()
            .map(|a| Granted {
                actions: a
                    .actions
                    .iter()
                    .filter_map(|x| ScopeAction::parse(x))
                    .collect(),
                kind: a.kind,
                name: a.name,
            })
            .collect();
        Self(granted.into())
    }

    /// Whether the token allows `action` on resource `kind:name`. `*` grants
    /// every action (and is the only grant of `registry:catalog`).
    #[must_use]
    pub fn allows(&self, kind: &str, name: &str, action: Action) -> bool {
        self.0
            .iter()
            .any(|a| a.kind == kind && a.name == name && a.actions.iter().any(|x| x.covers(action)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scopes() {
        let s = Scope::parse("repository:team/app:pull,push").unwrap();
        assert_eq!(
            (s.kind.as_str(), s.name.as_str()),
            ("repository", "team/app")
        );
        assert_eq!(s.actions.len(), 2);
        let s = Scope::parse("repository(plugin):team/app:pull").unwrap();
        assert_eq!(
            (s.kind.as_str(), s.name.as_str()),
            ("repository", "team/app")
        );
        // Names no repository can have are refused, with the reason.
        for bad in [
            "repository:alice/../bob/private:pull",
            "repository:alice/**:pull",
            "repository:host:5000/app:pull",
            "repository:Team/App:pull",
        ] {
            let e = Scope::parse(bad).unwrap_err();
            assert!(
                matches!(e, ScopeError::InvalidRepository { .. }),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            Scope::parse("registry:catalog:*").unwrap().to_spec(),
            "registry:catalog:*"
        );
        for bad in [
            "",
            "repository",
            "repository:app",
            ":a:pull",
            "repository::pull",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
        let all = Scope::parse_all(["repository:a:pull repository:b:push", "registry:catalog:*"])
            .unwrap();
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn grants() {
        let g = Grants::new(vec![ResourceAccess {
            kind: "repository".into(),
            name: "a".into(),
            actions: vec!["pull".into()],
        }]);
        assert!(g.allows("repository", "a", Action::Pull));
        assert!(!g.allows("repository", "a", Action::Push));
        assert!(!g.allows("repository", "b", Action::Pull));
    }
}
