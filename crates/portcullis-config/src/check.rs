//! Walks the parsed YAML against the schema: unknown keys, wrong types,
//! ignored keys, and the JSON value the typed configuration is read from.
//!
//! The walk never stops at the first problem. Each unknown key or wrong type
//! becomes a [`ConfigError`] with the key's line; each key portcullis ignores
//! becomes a warning. What remains, the keys portcullis acts on with values of
//! the right type, becomes a `serde_json::Value` that serde turns into
//! [`crate::Config`] with the defaults filled in.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::duration::parse_duration;
use crate::error::ConfigError;
use crate::schema::{self, Act, Field, Shape};
use portcullis_yaml::{Entry, Kind, Loc, Node, child_path};

/// Describes a location for messages: `config.yml:3` or `env REGISTRY_X`.
pub(crate) fn place(source: &str, loc: &Loc) -> (String, Option<usize>) {
    match &loc.origin {
        Some(flag) if flag.starts_with("--") => (format!("flag {flag}"), None),
        Some(var) => (format!("env {var}"), None),
        None => (source.to_owned(), Some(loc.line)),
    }
}

/// Collects errors, warnings and where each key was set while walking.
pub(crate) struct Checker<'a> {
    source: &'a str,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<String>,
    pub origins: BTreeMap<String, Loc>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(source: &'a str) -> Self {
        Self {
            source,
            errors: Vec::new(),
            warnings: Vec::new(),
            origins: BTreeMap::new(),
        }
    }

    pub(crate) fn error(
        &mut self,
        key: &str,
        loc: &Loc,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        let (source, line) = place(self.source, loc);
        self.errors
            .push(ConfigError::new(key, message, fix).at(source, line));
    }

    pub(crate) fn warn(&mut self, key: &str, loc: &Loc, message: &str) {
        let (source, line) = place(self.source, loc);
        let at = match line {
            Some(line) => format!("{source}:{line}"),
            None => source,
        };
        self.warnings.push(format!("{at}: {key}: {message}"));
    }

    /// Checks the whole document and returns the JSON of the keys portcullis uses.
    pub(crate) fn root(&mut self, root: &Node) -> Value {
        let Kind::Map(entries) = &root.kind else {
            self.error(
                "",
                &root.loc,
                format!("the configuration must be a map of sections, not {}", root.describe()),
                "start the file with `version: 0.1` and put sections such as `http:` and `storage:` under it",
            );
            return Value::Object(Map::new());
        };
        Value::Object(self.map(schema::ROOT, entries, "", false))
    }

    fn map(
        &mut self,
        fields: &[Field],
        entries: &[Entry],
        path: &str,
        in_ignored: bool,
    ) -> Map<String, Value> {
        let mut out = Map::new();
        for entry in entries {
            let key = child_path(path, &entry.key);
            let Some(field) = schema::field(fields, &entry.key) else {
                self.unknown(fields, entry, path, &key);
                continue;
            };
            let ignored = in_ignored || matches!(field.act, Act::Ignored(_));
            if !in_ignored {
                match field.act {
                    Act::Used => {}
                    Act::Ignored(why) => self.warn(
                        &key,
                        &entry.loc,
                        &format!(
                            "accepted for compatibility with distribution, but ignored: {why}. Remove it to silence this warning"
                        ),
                    ),
                    Act::Deprecated(instead) => self.warn(
                        &key,
                        &entry.loc,
                        &format!("deprecated; use `{instead}` instead"),
                    ),
                }
            }
            self.origins.insert(key.clone(), entry.loc.clone());
            if let Some(value) = self.value(&field.shape, &entry.value, &key, &entry.loc, ignored)
                && !ignored
            {
                out.insert(entry.key.clone(), value);
            }
        }
        out
    }

    fn unknown(&mut self, fields: &[Field], entry: &Entry, path: &str, key: &str) {
        let names = fields.iter().map(|f| f.name);
        let nearest = schema::nearest(&entry.key, names.clone()).map(|n| child_path(path, n));
        let fix = if nearest.is_some() {
            "remove it or rename it".to_owned()
        } else {
            let valid: Vec<&str> = names.collect();
            format!(
                "remove it or rename it; the keys allowed here are: {}",
                valid.join(", ")
            )
        };
        let (source, line) = place(self.source, &entry.loc);
        self.errors.push(
            ConfigError::new(key, "unknown key", fix)
                .at(source, line)
                .nearest(nearest),
        );
    }

    /// Checks one value against its shape. `key_loc` is where its key is
    /// written; type errors point there.
    fn value(
        &mut self,
        shape: &Shape,
        node: &Node,
        key: &str,
        key_loc: &Loc,
        in_ignored: bool,
    ) -> Option<Value> {
        let loc = key_loc;
        if matches!(node.kind, Kind::Null) {
            return match shape {
                Shape::Map(_) => Some(Value::Object(Map::new())),
                Shape::Flag => Some(Value::Bool(true)),
                Shape::Any => Some(Value::Null),
                _ => None,
            };
        }
        match shape {
            Shape::Any => Some(to_json(node)),
            Shape::Flag => Some(Value::Bool(true)),
            Shape::Map(fields) => match &node.kind {
                Kind::Map(entries) => {
                    Some(Value::Object(self.map(fields, entries, key, in_ignored)))
                }
                _ => {
                    let example = fields.first().map_or("key", |f| f.name);
                    self.error(
                        key,
                        loc,
                        format!("expected a section of keys, got {}", node.describe()),
                        format!(
                            "write it as a section of keys, such as `{}: {{{example}: ...}}`",
                            key.rsplit('.').next().unwrap_or(key)
                        ),
                    );
                    None
                }
            },
            Shape::MapOf(inner) => match &node.kind {
                Kind::Map(entries) => {
                    let mut out = Map::new();
                    for entry in entries {
                        let child = child_path(key, &entry.key);
                        if let Some(v) =
                            self.value(inner, &entry.value, &child, &entry.loc, in_ignored)
                        {
                            out.insert(entry.key.clone(), v);
                        }
                    }
                    Some(Value::Object(out))
                }
                _ => {
                    let fix = if matches!(inner, Shape::StrList) {
                        "write a map of names to lists, such as `X-Content-Type-Options: [nosniff]`"
                    } else {
                        "write a map of names to values"
                    };
                    self.error(
                        key,
                        loc,
                        format!("expected a map, got {}", node.describe()),
                        fix,
                    );
                    None
                }
            },
            Shape::StrList => match &node.kind {
                Kind::Seq(items) => {
                    let mut out = Vec::new();
                    for (i, item) in items.iter().enumerate() {
                        match &item.kind {
                            Kind::Scalar { text, .. } => out.push(Value::String(text.clone())),
                            _ => self.error(
                                &format!("{key}[{i}]"),
                                &item.loc,
                                format!("expected a single value, got {}", item.describe()),
                                "write each list item as a plain value",
                            ),
                        }
                    }
                    Some(Value::Array(out))
                }
                _ => {
                    self.error(
                        key,
                        loc,
                        format!("expected a list, got {}", node.describe()),
                        "write a list, such as `[a, b]` or one `- item` per line",
                    );
                    None
                }
            },
            Shape::Str | Shape::Bool | Shape::Uint(_) | Shape::Duration | Shape::Enum(_) => {
                let Kind::Scalar { text, plain } = &node.kind else {
                    self.error(
                        key,
                        loc,
                        format!("expected a single value, got {}", node.describe()),
                        "write one value after the colon",
                    );
                    return None;
                };
                self.scalar(shape, text, *plain, key, loc)
            }
        }
    }

    fn scalar(
        &mut self,
        shape: &Shape,
        text: &str,
        plain: bool,
        key: &str,
        loc: &Loc,
    ) -> Option<Value> {
        match shape {
            Shape::Bool => match parse_bool(text) {
                Some(b) => Some(Value::Bool(b)),
                None => {
                    self.error(
                        key,
                        loc,
                        format!("expected true or false, got `{text}`"),
                        "write `true` or `false`",
                    );
                    None
                }
            },
            Shape::Uint(max) => match text.trim().replace('_', "").parse::<u64>() {
                Ok(n) if n <= *max => Some(Value::from(n)),
                _ => {
                    self.error(
                        key,
                        loc,
                        format!("expected a whole number from 0 to {max}, got `{text}`"),
                        "write a number without quotes or units",
                    );
                    None
                }
            },
            Shape::Duration => {
                if plain && !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                    // Go's YAML decoder reads a bare integer as nanoseconds.
                    if let Ok(n) = text.parse::<u64>() {
                        return Some(Value::from(n));
                    }
                }
                match parse_duration(text) {
                    Ok(_) => Some(Value::String(text.to_owned())),
                    Err(message) => {
                        self.error(
                            key,
                            loc,
                            message,
                            "write a duration such as `10s`, `30m` or `168h`",
                        );
                        None
                    }
                }
            }
            Shape::Enum(allowed) => {
                // Case-insensitive, keeping the spelling of the allowed list
                // (`es256` means `ES256`; `INFO` means `info`).
                if let Some(canonical) = allowed.iter().find(|a| a.eq_ignore_ascii_case(text)) {
                    Some(Value::String((*canonical).to_owned()))
                } else {
                    let hint = schema::nearest(text, allowed.iter().copied())
                        .map(|n| format!(" (did you mean `{n}`?)"))
                        .unwrap_or_default();
                    self.error(
                        key,
                        loc,
                        format!("`{text}` is not a valid value{hint}"),
                        format!("use one of: {}", allowed.join(", ")),
                    );
                    None
                }
            }
            _ => Some(Value::String(text.to_owned())),
        }
    }
}

/// YAML 1.1 booleans, as Go's YAML v2 decoder reads them into a `bool` field.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y" => {
            Some(true)
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n" | "N" => {
            Some(false)
        }
        _ => None,
    }
}

/// A free-form value as JSON: plain scalars become booleans and numbers where
/// they look like one, everything else a string.
pub(crate) fn to_json(node: &Node) -> Value {
    match &node.kind {
        Kind::Null => Value::Null,
        Kind::Scalar { text, plain: false } => Value::String(text.clone()),
        Kind::Scalar { text, plain: true } => match text.as_str() {
            "true" | "True" | "TRUE" => Value::Bool(true),
            "false" | "False" | "FALSE" => Value::Bool(false),
            _ => {
                if let Ok(n) = text.parse::<i64>() {
                    Value::from(n)
                } else if let Ok(n) = text.parse::<u64>() {
                    Value::from(n)
                } else if text.chars().any(|c| c.is_ascii_digit())
                    && let Ok(f) = text.parse::<f64>()
                    && f.is_finite()
                {
                    Value::from(f)
                } else {
                    Value::String(text.clone())
                }
            }
        },
        Kind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        Kind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), to_json(&e.value)))
                .collect(),
        ),
    }
}
