//! The words of a rule: its subjects (`anonymous`, `user:NAME`, ...) and
//! its actions (`pull`, `push`, ...), with the hints for near misses.

use std::collections::HashSet;
use std::fmt;

use super::parse::{ALL, CATALOG, DELETE, PULL, PUSH, nearest};

/// Who a rule is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Subject {
    Anonymous,
    Authenticated,
    User(String),
    Group(String),
    Robot(String),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("anonymous"),
            Self::Authenticated => f.write_str("authenticated"),
            Self::User(name) => write!(f, "user:{name}"),
            Self::Group(name) => write!(f, "group:{name}"),
            Self::Robot(name) => write!(f, "robot:{name}"),
        }
    }
}

const SUBJECTS_FIX: &str = "use anonymous, authenticated, user:NAME, group:NAME or robot:NAME";
const ACTIONS: &str = "pull, push, delete, catalog and \"*\" (all four)";

/// A subject as written in `subjects`, checked against the defined `groups`;
/// the error is the message and its fix.
pub(super) fn parse_subject(
    text: &str,
    groups: &HashSet<&str>,
) -> Result<Subject, (String, String)> {
    let unknown = |fix: String| Err((format!("unknown subject `{text}`"), fix));
    let Some((kind, name)) = text.split_once(':') else {
        if text.eq_ignore_ascii_case("anonymous") {
            return Ok(Subject::Anonymous);
        }
        if text.eq_ignore_ascii_case("authenticated") {
            return Ok(Subject::Authenticated);
        }
        if let Some(near) = nearest(text, &["anonymous", "authenticated"]) {
            return unknown(format!("did you mean `{near}`? {SUBJECTS_FIX}"));
        }
        let hint = match text {
            "*" | "all" | "everyone" | "any" => {
                " (rules for anonymous apply to everyone; authenticated means every signed-in user)"
                    .to_owned()
            }
            _ => format!(" (for the user `{text}`, write `user:{text}`)"),
        };
        return unknown(format!("{SUBJECTS_FIX}{hint}"));
    };
    let kind_lower = kind.to_ascii_lowercase();
    if !matches!(kind_lower.as_str(), "user" | "group" | "robot") {
        let fix = match nearest(kind, &["user", "group", "robot"]) {
            Some(near) => format!("did you mean `{near}:{name}`? {SUBJECTS_FIX}"),
            None => SUBJECTS_FIX.to_owned(),
        };
        return unknown(fix);
    }
    if name.is_empty() {
        return Err((
            format!("subject `{text}` has no name after `{kind}:`"),
            format!("write `{kind_lower}:NAME`"),
        ));
    }
    if let Some(c) = name.chars().find(|&c| c == ':' || c.is_control()) {
        return Err((
            format!("subject `{text}`: the name contains {c:?}"),
            "names cannot contain `:` or control characters".to_owned(),
        ));
    }
    match kind_lower.as_str() {
        "user" => Ok(Subject::User(name.to_owned())),
        "robot" => Ok(Subject::Robot(name.to_owned())),
        _ if groups.contains(name) => Ok(Subject::Group(name.to_owned())),
        _ => {
            let mut known: Vec<&str> = groups.iter().copied().collect();
            known.sort_unstable();
            let fix = match nearest(name, &known) {
                Some(near) => {
                    format!("did you mean `group:{near}`? Or define `{name}` under `groups`")
                }
                None if known.is_empty() => {
                    format!("define the group under `groups:`, as in `{name}: [alice, bob]`")
                }
                None => format!(
                    "define `{name}` under `groups`; the groups defined are {}",
                    known.join(", ")
                ),
            };
            Err((format!("group `{name}` is not defined"), fix))
        }
    }
}

/// An action as written in `actions`, as action bits; the error is the fix.
pub(super) fn parse_action(text: &str) -> Result<u8, String> {
    match text.to_ascii_lowercase().as_str() {
        "pull" => return Ok(PULL),
        "push" => return Ok(PUSH),
        "delete" => return Ok(DELETE),
        "catalog" => return Ok(CATALOG),
        "*" => return Ok(ALL),
        _ => {}
    }
    let synonym = match text.to_ascii_lowercase().as_str() {
        "read" | "get" | "fetch" | "download" => Some("pull"),
        "write" | "put" | "upload" => Some("push"),
        "remove" | "rm" | "del" => Some("delete"),
        "all" | "any" | "admin" | "everything" | "**" => Some("\"*\""),
        "list" | "search" | "registry:catalog:*" => Some("catalog"),
        _ => nearest(text, &["pull", "push", "delete", "catalog"]),
    };
    Err(match synonym {
        Some(s) => format!("did you mean {s}? The actions are {ACTIONS}"),
        None => format!("the actions are {ACTIONS}"),
    })
}
