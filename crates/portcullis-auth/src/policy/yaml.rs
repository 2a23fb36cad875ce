//! YAML text to a small tree that remembers the line of every node and key.
//!
//! Built from the event stream of `granit-parser` (the parser under
//! serde-saphyr, which re-exports it) rather than through serde, so that every
//! rule, subject and pattern keeps its line for error messages and for the
//! "which rule decided" explanations, and so that scalars keep their exact text
//! (`no` stays the user name `no`, not a boolean). The approach follows
//! `portcullis-config`'s `tree.rs`; the auth crate must not depend on the config
//! crate, so this is a smaller copy: anchors and aliases are expanded (with a
//! size budget against alias bombs), `<<` merge keys are applied, and a key
//! given twice in one mapping is an error.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span, StrInput};

/// A YAML value.
#[derive(Clone, Debug)]
pub(super) enum Kind {
    /// `~`, `null`, or nothing at all.
    Null,
    /// Any other scalar, with its exact text.
    Scalar(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A value and the 1-based line where it starts.
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub kind: Kind,
    pub line: usize,
}

/// One `key: value` pair of a mapping.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub key: String,
    /// The line where the key is written.
    pub line: usize,
    pub value: Node,
}

impl Node {
    /// A short description of this node, for error messages.
    pub(super) fn describe(&self) -> String {
        match &self.kind {
            Kind::Null => "nothing".to_owned(),
            Kind::Scalar(text) => format!("`{text}`"),
            Kind::Seq(_) => "a list".to_owned(),
            Kind::Map(_) => "a map".to_owned(),
        }
    }

    fn size(&self) -> usize {
        match &self.kind {
            Kind::Null | Kind::Scalar(_) => 1,
            Kind::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Kind::Map(entries) => 1 + entries.iter().map(|e| 1 + e.value.size()).sum::<usize>(),
        }
    }
}

/// A YAML problem: the line (1-based, in the parsed text), what is wrong, and
/// how to fix it.
#[derive(Clone, Debug)]
pub(super) struct Problem {
    pub line: usize,
    pub message: String,
    pub fix: String,
}

const MAX_DEPTH: usize = 64;
const MAX_NODES: usize = 2_000_000;

/// Parses `text`, which must hold at most one YAML document. Returns `None`
/// for an empty document.
pub(super) fn parse(text: &str) -> Result<Option<Node>, Problem> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        budget: MAX_NODES,
    };
    builder.document()
}

struct Builder<'a> {
    parser: Parser<'a, StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    budget: usize,
}

fn syntax(line: usize, message: impl Into<String>) -> Problem {
    let message = message.into();
    // The most common slip in a policy: `*` starts a YAML alias, so an
    // unquoted `**` or `*` is not a string.
    let fix = if message.contains("alias") || message.contains("anchor") {
        "correct the YAML syntax at that line; quote patterns and actions that start with `*`, \
         as in \"**\" and \"*\""
    } else {
        "correct the YAML syntax at that line"
    };
    Problem {
        line,
        message,
        fix: fix.to_owned(),
    }
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

impl<'a> Builder<'a> {
    /// The next event that carries meaning (comments and anchor metadata skipped).
    fn next(&mut self) -> Result<(Event<'a>, Span), Problem> {
        loop {
            match self.parser.next() {
                None => return Err(syntax(0, "unexpected end of YAML input")),
                Some(Err(e)) => return Err(syntax(e.marker().line(), e.info())),
                Some(Ok((event, span))) => {
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
                node => root = Some(self.node(node, span, 0)?),
            }
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span, depth: usize) -> Result<Node, Problem> {
        let line = span.start.line();
        if depth > MAX_DEPTH {
            return Err(syntax(line, "the YAML is nested too deeply"));
        }
        self.budget = self
            .budget
            .checked_sub(1)
            .ok_or_else(|| syntax(line, "the YAML is too large"))?;
        let (kind, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let forced_string = tag
                    .as_ref()
                    .is_some_and(|t| t.is_yaml_core_schema_tag("str"));
                let plain = style == ScalarStyle::Plain && !forced_string;
                let kind = if plain && is_null(&text) {
                    Kind::Null
                } else {
                    Kind::Scalar(text.into_owned())
                };
                (kind, anchor)
            }
            Event::SequenceStart(_, anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(event, span, depth + 1)?);
                }
                (Kind::Seq(items), anchor)
            }
            Event::MappingStart(_, anchor, _) => (self.mapping(depth)?, anchor),
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(syntax(line, "alias to an unknown anchor"));
                };
                let node = target.clone();
                self.budget = self.budget.checked_sub(node.size()).ok_or_else(|| {
                    syntax(line, "the YAML expands to too many nodes through aliases")
                })?;
                (node.kind, 0)
            }
            other => return Err(syntax(line, format!("unexpected YAML event {other:?}"))),
        };
        let node = Node { kind, line };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn mapping(&mut self, depth: usize) -> Result<Kind, Problem> {
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
            let (event, span) = self.next()?;
            let value = self.node(event, span, depth + 1)?;
            if merge {
                merge_into(&mut merged, value, key_line)?;
                continue;
            }
            if let Some(previous) = entries.iter().find(|e| e.key == key) {
                return Err(Problem {
                    line: key_line,
                    message: format!(
                        "duplicate key `{key}` (first given at line {})",
                        previous.line
                    ),
                    fix: "keep only one of them".to_owned(),
                });
            }
            entries.push(Entry {
                key,
                line: key_line,
                value,
            });
        }
        // Keys written in the mapping itself win over merged ones.
        for entry in merged {
            if !entries.iter().any(|e| e.key == entry.key) {
                entries.push(entry);
            }
        }
        Ok(Kind::Map(entries))
    }
}

/// Collects the entries of a `<<` value (a map, or a list of maps; earlier
/// maps win) into `merged`.
fn merge_into(merged: &mut Vec<Entry>, value: Node, line: usize) -> Result<(), Problem> {
    let bad = || Problem {
        line,
        message: "a merge key (`<<`) needs a map or a list of maps".to_owned(),
        fix: "merge an anchored map, such as `<<: *defaults`".to_owned(),
    };
    let maps = match value.kind {
        Kind::Map(entries) => vec![entries],
        Kind::Seq(items) => {
            let mut maps = Vec::new();
            for item in items {
                let Kind::Map(entries) = item.kind else {
                    return Err(bad());
                };
                maps.push(entries);
            }
            maps
        }
        _ => return Err(bad()),
    };
    for entries in maps {
        for entry in entries {
            if !merged.iter().any(|e| e.key == entry.key) {
                merged.push(entry);
            }
        }
    }
    Ok(())
}
