//! The builder: `granit-parser` events to [`Node`]s, with anchors, aliases,
//! merge keys, duplicate keys and the size and depth budgets.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span, StrInput};

use crate::{Cause, Entry, Kind, Loc, Node, Options, Parsed, Problem, SYNTAX_FIX, child_path};

/// Parses `text`, which must hold at most one YAML document, with the default
/// [`Options`].
///
/// # Errors
/// Returns the syntax error that stopped parsing.
pub fn parse(text: &str) -> Result<Parsed, Problem> {
    parse_with(text, &Options::default())
}

/// Parses `text`, which must hold at most one YAML document.
///
/// # Errors
/// Returns the syntax error that stopped parsing or, with
/// [`Options::strict`], the first problem of any kind.
pub fn parse_with(text: &str, options: &Options) -> Result<Parsed, Problem> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        problems: Vec::new(),
        budget: options.max_nodes,
        max_depth: options.max_depth,
        strict: options.strict,
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
    max_depth: usize,
    strict: bool,
}

fn syntax(line: usize, message: impl Into<String>) -> Problem {
    Problem {
        key: String::new(),
        line,
        message: message.into(),
        fix: SYNTAX_FIX.to_owned(),
        cause: Cause::Syntax,
    }
}

fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

impl<'a> Builder<'a> {
    /// Records a non-fatal problem, or returns it when parsing is strict.
    fn problem(&mut self, problem: Problem) -> Result<(), Problem> {
        if self.strict {
            return Err(problem);
        }
        self.problems.push(problem);
        Ok(())
    }

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
        let loc = Loc::at_line(line);
        if depth > self.max_depth {
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
                self.merge_into(&mut merged, value, path, key_line)?;
                continue;
            }
            if let Some(i) = entries.iter().position(|e| e.key == key) {
                let first_line = entries[i].loc.line;
                self.problem(Problem {
                    key: key_path,
                    line: key_line,
                    message: format!("duplicate key (first given at line {first_line})"),
                    fix: "keep only one of them".to_owned(),
                    cause: Cause::DuplicateKey {
                        name: key,
                        first_line,
                    },
                })?;
                entries[i].value = value;
                continue;
            }
            entries.push(Entry {
                key,
                loc: Loc::at_line(key_line),
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
    fn merge_into(
        &mut self,
        merged: &mut Vec<Entry>,
        value: Node,
        path: &str,
        line: usize,
    ) -> Result<(), Problem> {
        let maps = match value.kind {
            Kind::Map(entries) => vec![entries],
            Kind::Seq(items) => {
                let mut maps = Vec::new();
                for item in items {
                    if let Kind::Map(entries) = item.kind {
                        maps.push(entries);
                    } else {
                        self.bad_merge(path, line)?;
                    }
                }
                maps
            }
            _ => {
                self.bad_merge(path, line)?;
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
        Ok(())
    }

    fn bad_merge(&mut self, path: &str, line: usize) -> Result<(), Problem> {
        self.problem(Problem {
            key: child_path(path, "<<"),
            line,
            message: "a merge key (`<<`) needs a map or a list of maps".to_owned(),
            fix: "merge an anchored map, such as `<<: *defaults`".to_owned(),
            cause: Cause::BadMerge,
        })
    }
}
