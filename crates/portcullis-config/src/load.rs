//! Loading: YAML text and environment to a [`Config`], with every problem found.
//!
//! The steps are: parse the text into a tree that keeps lines (`portcullis-yaml`),
//! apply `REGISTRY_*` overrides to the tree (`crate::env`), walk the tree
//! against the schema (`crate::check`), check what the walk cannot see one key
//! at a time (the version, exactly one storage driver), and finally let serde
//! read the checked JSON into the typed [`Config`] with its defaults.

use serde_json::{Map, Value};

use crate::check::{Checker, place, to_json};
use crate::error::{ConfigError, ConfigErrors};
use crate::model::{Config, Meta};
use crate::schema::STORAGE_DRIVERS;
use crate::{Loaded, env};
use portcullis_yaml::{Entry, Kind, Loc, Node};

pub(crate) fn from_yaml(
    text: &str,
    source: &str,
    env: &[(String, String)],
) -> Result<Loaded, ConfigErrors> {
    let parsed = portcullis_yaml::parse(text).map_err(|p| {
        ConfigErrors::from(
            ConfigError::new(p.key, p.message, p.fix).at(source, Some(p.line.max(1))),
        )
    })?;
    let mut errors: Vec<ConfigError> = parsed
        .problems
        .into_iter()
        .map(|p| ConfigError::new(p.key, p.message, p.fix).at(source, Some(p.line)))
        .collect();
    let mut warnings = Vec::new();
    let mut root = parsed
        .root
        .unwrap_or_else(|| Node::new(Kind::Map(Vec::new()), Loc::at_line(1)));
    if let Kind::Map(entries) = &mut root.kind {
        normalize_storage(entries);
    }
    if matches!(root.kind, Kind::Map(_)) {
        env::apply(&mut root, env, &mut errors, &mut warnings);
    }

    let mut checker = Checker::new(source);
    let mut json = checker.root(&root);
    errors.append(&mut checker.errors);
    warnings.append(&mut checker.warnings);
    if let Kind::Map(entries) = &root.kind {
        check_version(entries, source, &mut errors);
        if let Some(driver) = check_storage(entries, source, &mut errors)
            && let Some(storage) = json.get_mut("storage").and_then(Value::as_object_mut)
        {
            storage.insert("other_driver".to_owned(), driver);
        }
    }
    if !errors.is_empty() {
        // File errors in line order, then those from the environment.
        errors.sort_by_key(|e| (e.line.is_none(), e.line));
        return Err(ConfigErrors(errors));
    }

    fold_deprecated(&mut json);
    let mut config: Config = serde_json::from_value(json).map_err(|e| {
        ConfigErrors::from(
            ConfigError::new(
                "",
                format!("internal error reading the checked configuration: {e}"),
                "report this as a portcullis bug",
            )
            .at(source, None),
        )
    })?;
    config.access = access_section(text, source, &root);
    if config.catalog.maxentries == 0 {
        config.catalog.maxentries = 1000;
    }
    config.meta = Meta {
        source: source.to_owned(),
        origins: checker.origins,
    };
    Ok(Loaded { config, warnings })
}

/// `storage: inmemory` (a driver name alone) means `storage: {inmemory: }`,
/// as in distribution.
fn normalize_storage(entries: &mut [Entry]) {
    if let Some(storage) = entries.iter_mut().find(|e| e.key == "storage")
        && let Kind::Scalar { text, .. } = &storage.value.kind
    {
        let loc = storage.value.loc.clone();
        storage.value = Node::new(
            Kind::Map(vec![Entry {
                key: text.clone(),
                loc: loc.clone(),
                value: Node::new(Kind::Null, loc.clone()),
            }]),
            loc,
        );
    }
}

fn check_version(entries: &[Entry], source: &str, errors: &mut Vec<ConfigError>) {
    match entries.iter().find(|e| e.key == "version") {
        None => errors.push(
            ConfigError::new(
                "version",
                "missing; distribution's configuration format needs a version",
                "add `version: 0.1` as the first line",
            )
            .at(source, Some(1)),
        ),
        Some(entry) => {
            let text = match &entry.value.kind {
                Kind::Scalar { text, .. } => text.as_str(),
                _ => "",
            };
            if text != "0.1" {
                let (src, line) = place(source, &entry.loc);
                errors.push(
                    ConfigError::new(
                        "version",
                        format!(
                            "unsupported version {}; the only configuration version is 0.1",
                            entry.value.describe()
                        ),
                        "set `version: 0.1`",
                    )
                    .at(src, line),
                );
            }
        }
    }
}

/// Checks that exactly one storage driver is set. Returns the JSON for
/// `storage.other_driver` when that driver is one portcullis lacks.
fn check_storage(entries: &[Entry], source: &str, errors: &mut Vec<ConfigError>) -> Option<Value> {
    let storage = entries.iter().find(|e| e.key == "storage");
    let drivers: Vec<&Entry> = match storage.map(|s| &s.value.kind) {
        Some(Kind::Map(children)) => children
            .iter()
            .filter(|e| STORAGE_DRIVERS.contains(&e.key.as_str()))
            .collect(),
        _ => Vec::new(),
    };
    match drivers.as_slice() {
        [] => {
            let (src, line) = storage.map_or((source.to_owned(), None), |s| place(source, &s.loc));
            // A `storage` that is not a map was already reported by the walk.
            if storage.is_none_or(|s| matches!(s.value.kind, Kind::Map(_) | Kind::Null)) {
                errors.push(
                    ConfigError::new(
                        "storage",
                        "no storage driver is configured",
                        "set `storage.filesystem.rootdirectory`, for example to /var/lib/registry (or set REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY)",
                    )
                    .at(src, line),
                );
            }
            None
        }
        [driver] => {
            if matches!(driver.key.as_str(), "filesystem" | "inmemory") {
                return None;
            }
            let params = match to_json(&driver.value) {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            Some(serde_json::json!({ "name": driver.key, "params": params }))
        }
        [first, rest @ ..] => {
            for driver in rest {
                let (src, line) = place(source, &driver.loc);
                let first_at = match place(source, &first.loc) {
                    (_, Some(line)) => format!("line {line}"),
                    (src, None) => src,
                };
                errors.push(
                    ConfigError::new(
                        format!("storage.{}", driver.key),
                        format!(
                            "more than one storage driver is configured (`{}` at {first_at} and `{}`)",
                            first.key, driver.key
                        ),
                        "keep exactly one storage driver",
                    )
                    .at(src, line),
                );
            }
            None
        }
    }
}

/// The deprecated top-level `loglevel` sets `log.level` when that is not set.
fn fold_deprecated(json: &mut Value) {
    let Some(root) = json.as_object_mut() else {
        return;
    };
    let Some(level) = root.remove("loglevel") else {
        return;
    };
    let log = root
        .entry("log")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(log) = log.as_object_mut() {
        log.entry("level").or_insert(level);
    }
}

/// The `access:` section: a `path` (from the file or `REGISTRY_ACCESS_PATH`),
/// or the inline text for the policy parser.
fn access_section(text: &str, source: &str, root: &Node) -> Option<crate::access::AccessSection> {
    let Kind::Map(entries) = &root.kind else {
        return None;
    };
    let entry = entries.iter().find(|e| e.key == "access")?;
    let path = match &entry.value.kind {
        Kind::Map(items) => {
            items
                .iter()
                .find(|e| e.key == "path")
                .and_then(|e| match &e.value.kind {
                    Kind::Scalar { text, .. } => Some(std::path::PathBuf::from(text)),
                    _ => None,
                })
        }
        _ => None,
    };
    let inline = if path.is_some() {
        None
    } else {
        crate::access::top_level_block(text, "access").map(|(text, line_offset)| {
            crate::access::InlineText {
                text,
                line_offset,
                source: source.to_owned(),
            }
        })
    };
    Some(crate::access::AccessSection { path, inline })
}
