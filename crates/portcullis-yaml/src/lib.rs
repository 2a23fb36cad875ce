//! portcullis-yaml: YAML text to a small tree that remembers the line of every
//! key and value.
//!
//! The configuration (`portcullis-config`) and the access policy
//! (`portcullis-auth`) both read YAML through this one tree. It is built from
//! the event stream of `granit-parser` (the YAML parser under serde-saphyr,
//! re-exported by it), not through serde, for two reasons: every key keeps its
//! line, so later checks can point at it; and scalars keep the exact text and
//! whether they were quoted, so the schema, not the YAML library, decides what
//! a scalar means. That is how Go's YAML decoder, and so distribution, reads a
//! configuration: `version: 0.1` is the string `"0.1"`, `enabled: yes` is a
//! boolean because the field is one, and in a policy the user `no` stays `no`.
//!
//! Anchors and aliases are expanded (with a size budget against alias bombs),
//! `<<` merge keys are applied, and a key given twice in one mapping is
//! reported: as a [`Problem`] beside the tree, or, with [`Options::strict`], as
//! the error that stops parsing.

mod parse;

use std::sync::Arc;

pub use parse::{parse, parse_with};

/// Where a node came from: a line of the parsed text, or a named origin that
/// replaced it (for the configuration, an environment variable or a
/// command-line flag).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Loc {
    /// 1-based line in the text the node was parsed from; 0 when the node
    /// comes from `origin`.
    pub line: usize,
    /// The name of what set this node when it is not the parsed text.
    pub origin: Option<Arc<str>>,
}

impl Loc {
    /// A place in the parsed text.
    #[must_use]
    pub fn at_line(line: usize) -> Self {
        Self { line, origin: None }
    }

    /// Set by `origin` (such as `REGISTRY_HTTP_ADDR` or `--addr`), not by a line.
    #[must_use]
    pub fn from_origin(origin: impl Into<Arc<str>>) -> Self {
        Self {
            line: 0,
            origin: Some(origin.into()),
        }
    }
}

/// A YAML value.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `~`, `null`, or nothing at all (only when written plain).
    Null,
    /// Any other scalar, with its exact text and whether it was written plain
    /// (unquoted, untagged), which decides whether `true` may be a boolean.
    Scalar { text: String, plain: bool },
    /// A list.
    Seq(Vec<Node>),
    /// A mapping, its keys in file order (merged keys after written ones).
    Map(Vec<Entry>),
}

/// A value and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub loc: Loc,
}

/// One `key: value` pair of a mapping.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    /// Where the key is written.
    pub loc: Loc,
    pub value: Node,
}

impl Node {
    #[must_use]
    pub fn new(kind: Kind, loc: Loc) -> Self {
        Self { kind, loc }
    }

    /// The 1-based line where this node starts (0 for one set by an origin).
    #[must_use]
    pub fn line(&self) -> usize {
        self.loc.line
    }

    /// The text of a scalar, whether quoted or not.
    #[must_use]
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Marks this node and everything under it as set by `origin`.
    pub fn set_origin(&mut self, origin: &Arc<str>) {
        self.loc.origin = Some(Arc::clone(origin));
        match &mut self.kind {
            Kind::Seq(items) => items.iter_mut().for_each(|n| n.set_origin(origin)),
            Kind::Map(entries) => {
                for entry in entries {
                    entry.loc.origin = Some(Arc::clone(origin));
                    entry.value.set_origin(origin);
                }
            }
            Kind::Null | Kind::Scalar { .. } => {}
        }
    }

    /// A short description of this node's type, for error messages.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Null => "nothing".to_owned(),
            Kind::Scalar { text, .. } => format!("`{text}`"),
            Kind::Seq(_) => "a list".to_owned(),
            Kind::Map(_) => "a map".to_owned(),
        }
    }

    /// Number of nodes in this subtree, to bound alias expansion.
    fn size(&self) -> usize {
        match &self.kind {
            Kind::Null | Kind::Scalar { .. } => 1,
            Kind::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Kind::Map(entries) => 1 + entries.iter().map(|e| 1 + e.value.size()).sum::<usize>(),
        }
    }
}

/// The dotted path of `key` below `path` (`http` and `addr` give `http.addr`).
/// List items are written `path[i]`.
#[must_use]
pub fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// What kind of problem a [`Problem`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The text is not YAML this tree can hold (syntax, too large, too deep,
    /// an unknown alias, a key that is not a scalar, two documents).
    Syntax,
    /// The key `name` is given twice in one mapping.
    DuplicateKey { name: String, first_line: usize },
    /// A `<<` merge key whose value is not a map or a list of maps.
    BadMerge,
}

/// A problem found while parsing: where, what is wrong, and how to fix it.
/// A syntax error stops parsing; a duplicate key or a bad merge does not,
/// unless [`Options::strict`] is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The dotted path of the key concerned (`http.addr`, `rules[0].subjects`),
    /// empty for a syntax error.
    pub key: String,
    /// 1-based line; 0 when the text ended unexpectedly.
    pub line: usize,
    pub message: String,
    pub fix: String,
    pub cause: Cause,
}

/// The fix given with syntax errors.
pub const SYNTAX_FIX: &str = "correct the YAML syntax at that line";

/// The result of parsing one text.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The document's root, or `None` for an empty text.
    pub root: Option<Node>,
    /// Non-fatal problems, such as duplicate keys, in file order.
    pub problems: Vec<Problem>,
}

/// Limits and strictness of [`parse_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Most nodes the document may hold, aliases expanded.
    pub max_nodes: usize,
    /// Most levels of nesting.
    pub max_depth: usize,
    /// The first duplicate key or bad merge stops parsing and is returned as
    /// the error, instead of being listed in [`Parsed::problems`].
    pub strict: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_nodes: 1_000_000,
            max_depth: 64,
            strict: false,
        }
    }
}

#[cfg(test)]
mod tests;
