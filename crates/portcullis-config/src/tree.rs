//! YAML text to a small tree that remembers the line of every key and value.
//!
//! The tree is built from the event stream of `granit-parser` (the YAML parser
//! under serde-saphyr, re-exported by it), not through serde, for two reasons:
//! every key keeps its line, so later checks can point at it; and scalars keep
//! the exact text and whether they were quoted, so the schema, not the YAML
//! library, decides what a scalar means. That is how Go's YAML decoder, and so
//! distribution, reads a configuration: `version: 0.1` is the string `"0.1"`, and
//! `enabled: yes` is a boolean because the field is one.
//!
//! Anchors and aliases are expanded (with a size budget against alias bombs),
//! `<<` merge keys are applied, and a key given twice in one mapping is reported.

use std::collections::HashMap;
use std::sync::Arc;

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span, StrInput};

/// Where a node came from: a line of the file, or an environment variable.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub(crate) struct Loc {
    /// 1-based line in the text the node was parsed from.
    pub line: usize,
    /// The environment variable that set this node, if any, or the
    /// command-line flag (starting with `--`).
    pub env: Option<Arc<str>>,
}

impl Loc {
    /// Set by the command-line flag `flag` (such as `--addr`).
    pub(crate) fn flag(flag: &str) -> Self {
        Self {
            line: 0,
            env: Some(Arc::from(flag)),
        }
    }
}

/// A YAML value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Kind {
    /// `~`, `null`, or nothing at all.
    Null,
    /// Any other scalar, with its text and whether it was written plain
    /// (unquoted), which decides whether `true` may be a boolean.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    pub loc: Loc,
}

/// One `key: value` pair of a mapping.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    /// Where the key is written.
    pub loc: Loc,
    pub value: Node,
}

impl Node {
    pub(crate) fn new(kind: Kind, loc: Loc) -> Self {
        Self { kind, loc }
    }

    /// Marks this node and everything under it as set by `var`.
    pub(crate) fn set_env(&mut self, var: &Arc<str>) {
        self.loc.env = Some(Arc::clone(var));
        match &mut self.kind {
            Kind::Seq(items) => items.iter_mut().for_each(|n| n.set_env(var)),
            Kind::Map(entries) => {
                for entry in entries {
                    entry.loc.env = Some(Arc::clone(var));
                    entry.value.set_env(var);
                }
            }
            Kind::Null | Kind::Scalar { .. } => {}
        }
    }

    /// A short description of this node's type, for error messages.
    pub(crate) fn describe(&self) -> String {
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

/// A problem found while parsing. A syntax error stops parsing; a duplicate
/// key does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub key: String,
    pub line: usize,
    pub message: String,
    pub fix: String,
}

/// The result of parsing one text.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// The document's root, or `None` for an empty text.
    pub root: Option<Node>,
    /// Non-fatal problems, such as duplicate keys.
    pub problems: Vec<Problem>,
}

const MAX_DEPTH: usize = 64;
const MAX_NODES: usize = 1_000_000;

/// Parses `text`, which must hold at most one YAML document.
///
/// # Errors
/// Returns the syntax error that stopped parsing.
pub(crate) fn parse(text: &str) -> Result<Parsed, Problem> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        problems: Vec::new(),
        budget: MAX_NODES,
    };
    let root = builder.document()?;
    Ok(Parsed {
        root,
        problems: builder.problems,
    })
}

struct Builder<'a> {
    parser: Parser<'a, StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    problems: Vec<Problem>,
    budget: usize,
}

fn syntax(line: usize, message: impl Into<String>) -> Problem {
    Problem {
        key: String::new(),
        line,
        message: message.into(),
        fix: "correct the YAML syntax at that line".to_owned(),
    }
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> Builder<'a> {
    /// The next event that carries meaning (comments and anchor metadata skipped).
    fn next(&mut self) -> Result<(Event<'a>, Span), Problem> {
        loop {
            match self.parser.next() {
                None => return Err(syntax(0, "unexpected end of YAML input")),
                Some(Err(e)) => return Err(syntax(e.marker().line(), e.info())),
                Some(Ok((event, span))) => {
                    // Anchor metadata and comments are presentation only.
                    let structural = matches!(
                        event,
                        Event::StreamStart
                            | Event::StreamEnd
                            | Event::DocumentStart(..)
                            | Event::DocumentEnd
                            | Event::SequenceEnd
                            | Event::MappingEnd
                    );
                    if structural || (event.is_node() && !matches!(event, Event::Anchor(..))) {
                        return Ok((event, span));
                    }
                }
            }
        }
    }

    fn document(&mut self) -> Result<Option<Node>, Problem> {
        let mut root = None;
        let mut documents = 0;
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamStart | Event::DocumentEnd => {}
                Event::StreamEnd => return Ok(root),
                Event::DocumentStart(..) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(Problem {
                            fix: "keep one document in the file; remove the extra `---`".to_owned(),
                            ..syntax(span.start.line(), "more than one YAML document")
                        });
                    }
                    self.anchors.clear();
                }
                node => root = Some(self.node(node, span, "", 0)?),
            }
        }
    }

    fn node(
        &mut self,
        event: Event<'a>,
        span: Span,
        path: &str,
        depth: usize,
    ) -> Result<Node, Problem> {
        let line = span.start.line();
        let loc = Loc { line, env: None };
        if depth > MAX_DEPTH {
            return Err(syntax(line, "the YAML is nested too deeply"));
        }
        self.budget = self
            .budget
            .checked_sub(1)
            .ok_or_else(|| syntax(line, "the YAML is too large"))?;
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let forced_string = tag
                    .as_ref()
                    .is_some_and(|t| t.is_yaml_core_schema_tag("str"));
                let plain = style == ScalarStyle::Plain && !forced_string;
                let kind = if plain && is_null(&text) {
                    Kind::Null
                } else {
                    Kind::Scalar {
                        text: text.into_owned(),
                        plain,
                    }
                };
                (Node::new(kind, loc), anchor)
            }
            Event::SequenceStart(_, anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    let item_path = format!("{path}[{}]", items.len());
                    items.push(self.node(event, span, &item_path, depth + 1)?);
                }
                (Node::new(Kind::Seq(items), loc), anchor)
            }
            Event::MappingStart(_, anchor, _) => (self.mapping(loc, path, depth)?, anchor),
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(syntax(line, "alias to an unknown anchor"));
                };
                let mut node = target.clone();
                self.budget = self.budget.checked_sub(node.size()).ok_or_else(|| {
                    syntax(line, "the YAML expands to too many nodes through aliases")
                })?;
                node.loc = loc;
                (node, 0)
            }
            other => return Err(syntax(line, format!("unexpected YAML event {other:?}"))),
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn mapping(&mut self, loc: Loc, path: &str, depth: usize) -> Result<Node, Problem> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut merged: Vec<Entry> = Vec::new();
        loop {
            let (event, span) = self.next()?;
            let key_line = span.start.line();
            let (key, merge) = match event {
                Event::MappingEnd => break,
                Event::Scalar(text, style, _, _) => {
                    let merge = style == ScalarStyle::Plain && text == "<<";
                    (text.into_owned(), merge)
                }
                _ => {
                    return Err(Problem {
                        fix: "use plain words as keys".to_owned(),
                        ..syntax(key_line, "a key must be a plain scalar, not a list or map")
                    });
                }
            };
            let key_path = child_path(path, &key);
            let (event, span) = self.next()?;
            let value = self.node(event, span, &key_path, depth + 1)?;
            if merge {
                self.merge_into(&mut merged, value, path, key_line);
                continue;
            }
            if let Some(previous) = entries.iter_mut().find(|e| e.key == key) {
                self.problems.push(Problem {
                    key: key_path,
                    line: key_line,
                    message: format!("duplicate key (first given at line {})", previous.loc.line),
                    fix: "keep only one of them".to_owned(),
                });
                previous.value = value;
                continue;
            }
            entries.push(Entry {
                key,
                loc: Loc {
                    line: key_line,
                    env: None,
                },
                value,
            });
        }
        // Keys written in the mapping itself win over merged ones, whatever
        // their order, as the YAML merge-key spec says.
        for entry in merged {
            if !entries.iter().any(|e| e.key == entry.key) {
                entries.push(entry);
            }
        }
        Ok(Node::new(Kind::Map(entries), loc))
    }

    /// Collects the entries of a `<<` value (a map, or a list of maps; earlier
    /// maps win) into `merged`.
    fn merge_into(&mut self, merged: &mut Vec<Entry>, value: Node, path: &str, line: usize) {
        let maps = match value.kind {
            Kind::Map(entries) => vec![entries],
            Kind::Seq(items) => {
                let mut maps = Vec::new();
                for item in items {
                    if let Kind::Map(entries) = item.kind {
                        maps.push(entries);
                    } else {
                        self.bad_merge(path, line);
                    }
                }
                maps
            }
            _ => {
                self.bad_merge(path, line);
                Vec::new()
            }
        };
        for entries in maps {
            for entry in entries {
                if !merged.iter().any(|e| e.key == entry.key) {
                    merged.push(entry);
                }
            }
        }
    }

    fn bad_merge(&mut self, path: &str, line: usize) {
        self.problems.push(Problem {
            key: child_path(path, "<<"),
            line,
            message: "a merge key (`<<`) needs a map or a list of maps".to_owned(),
            fix: "merge an anchored map, such as `<<: *defaults`".to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(node: &Node) -> &[Entry] {
        match &node.kind {
            Kind::Map(entries) => entries,
            other => panic!("not a map: {other:?}"),
        }
    }

    fn scalar(node: &Node) -> (&str, bool) {
        match &node.kind {
            Kind::Scalar { text, plain } => (text, *plain),
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn keeps_lines_and_text() {
        let parsed =
            parse("# comment\nversion: 0.1\nhttp:\n  addr: \":5000\"\n  tls:\n\nlist: [a, b]\n")
                .unwrap();
        let root = parsed.root.unwrap();
        let entries = map(&root);
        assert_eq!(entries[0].key, "version");
        assert_eq!(entries[0].loc.line, 2);
        assert_eq!(scalar(&entries[0].value), ("0.1", true));
        let http = map(&entries[1].value);
        assert_eq!(http[0].loc.line, 4);
        assert_eq!(scalar(&http[0].value), (":5000", false));
        assert_eq!(http[1].value.kind, Kind::Null);
        assert!(matches!(&entries[2].value.kind, Kind::Seq(items) if items.len() == 2));
    }

    #[test]
    fn empty_text_has_no_root() {
        assert!(parse("").unwrap().root.is_none());
        assert!(parse("# only a comment\n").unwrap().root.is_none());
    }

    #[test]
    fn syntax_error_has_line() {
        let err = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.line >= 2, "{err:?}");
        let err = parse("a: 1\n  b: 2\n").unwrap_err();
        assert_eq!(err.line, 2, "{err:?}");
    }

    #[test]
    fn duplicate_keys_are_reported() {
        let parsed = parse("http:\n  addr: a\n  addr: b\n").unwrap();
        assert_eq!(parsed.problems.len(), 1);
        assert_eq!(parsed.problems[0].key, "http.addr");
        assert_eq!(parsed.problems[0].line, 3);
    }

    #[test]
    fn aliases_and_merges() {
        let text = "base: &b\n  a: 1\n  b: 2\nother:\n  <<: *b\n  b: 3\ncopy: *b\n";
        let root = parse(text).unwrap().root.unwrap();
        let entries = map(&root);
        let other = map(&entries[1].value);
        assert_eq!(other.len(), 2);
        assert_eq!(other[0].key, "b");
        assert_eq!(scalar(&other[0].value).0, "3");
        assert_eq!(other[1].key, "a");
        assert_eq!(map(&entries[2].value).len(), 2);
        assert_eq!(entries[2].value.loc.line, 7);
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse(&text).unwrap_err();
        assert!(err.message.contains("too many"), "{err:?}");
    }

    #[test]
    fn tagged_str_is_not_plain() {
        let root = parse("a: !!str true\n").unwrap().root.unwrap();
        assert_eq!(scalar(&map(&root)[0].value), ("true", false));
    }

    #[test]
    fn two_documents_are_refused() {
        let err = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(err.message.contains("more than one"), "{err:?}");
    }
}
