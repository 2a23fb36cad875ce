//! `REGISTRY_*` environment overrides, mapped the way distribution maps them.
//!
//! A key's variable is its path, upper-cased, joined with `_`, after
//! `REGISTRY_`: `http.addr` is `REGISTRY_HTTP_ADDR`. The value is read as YAML,
//! so `true` is a boolean and `{"enabled": true}` a map, and it replaces the
//! key's value in the file; sections that the file lacks are created. Below a
//! free-form map (`http.headers`, `log.fields`, driver parameters) the next part
//! of the name, lower-cased, is the map's key.
//!
//! Overrides are applied to the parsed tree before it is checked, so a value
//! set from the environment is checked like one from the file, and messages
//! name the variable instead of a line. Variables are applied shortest first,
//! so `REGISTRY_STORAGE_MAINTENANCE_READONLY={"enabled": true}` and then
//! `REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED=false` give `false`.
//!
//! Storage drivers follow distribution: a variable that sets a driver
//! (`REGISTRY_STORAGE=inmemory`, `REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=...`)
//! replaces the file's driver. Unlike distribution, the file's other storage
//! settings (`delete`, `maintenance`, ...) are kept.
//!
//! Kubernetes puts `REGISTRY_SERVICE_HOST`, `REGISTRY_PORT_5000_TCP` and the
//! like into the environment of every pod when a Service is called
//! `registry`; those are reported as warnings, not errors.

use std::sync::Arc;

use crate::error::ConfigError;
use crate::schema::{self, STORAGE_DRIVERS, Shape};
use portcullis_yaml::{Entry, Kind, Loc, Node, child_path};

const PREFIX: &str = "REGISTRY_";

/// Applies every `REGISTRY_*` variable in `env` to `root` (a map).
pub(crate) fn apply(
    root: &mut Node,
    env: &[(String, String)],
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) {
    let mut vars: Vec<&(String, String)> = env
        .iter()
        .filter(|(name, _)| name.starts_with(PREFIX))
        .collect();
    vars.sort_by_key(|(name, _)| (name.matches('_').count(), name.clone()));
    for (name, value) in vars {
        if is_service_link(name) {
            warnings.push(format!(
                "env {name}: ignored: this looks like a Kubernetes service link variable, not a configuration override \
                 (set `enableServiceLinks: false` on the pod, or name the Service something other than `registry`)"
            ));
            continue;
        }
        if name == "REGISTRY_VERSION" {
            warnings.push(format!(
                "env {name}: ignored: the configuration version cannot be overridden; it comes from the file"
            ));
            continue;
        }
        match apply_one(root, name, value) {
            Ok(Some(warning)) => warnings.push(warning),
            Ok(None) => {}
            Err(e) => errors.push(*e),
        }
    }
}

fn is_service_link(name: &str) -> bool {
    name == "REGISTRY_PORT"
        || name.starts_with("REGISTRY_PORT_")
        || name.starts_with("REGISTRY_SERVICE_")
}

fn unknown_var(name: &str) -> ConfigError {
    let suffix = &name[PREFIX.len()..];
    let names = schema::env_names();
    let nearest = schema::nearest(suffix, names.iter().map(|n| &n[PREFIX.len()..]))
        .map(|n| format!("{PREFIX}{n}"));
    ConfigError::new(
        name,
        "environment variable does not match any configuration key",
        "unset it or rename it (a key's variable is `REGISTRY_` and its path in capitals joined by `_`, such as `REGISTRY_HTTP_ADDR` for `http.addr`)",
    )
    .at("environment", None)
    .nearest(nearest)
}

/// Applies one variable. Returns a warning to show, if any.
fn apply_one(root: &mut Node, name: &str, value: &str) -> Result<Option<String>, Box<ConfigError>> {
    let var: Arc<str> = Arc::from(name);
    let env_loc = Loc::from_origin(Arc::clone(&var));
    let mut segments: Vec<String> = name[PREFIX.len()..].split('_').map(str::to_owned).collect();
    if segments.iter().any(String::is_empty) {
        return Err(Box::new(unknown_var(name)));
    }
    let parsed = portcullis_yaml::parse(value).map_err(|p| {
        Box::new(ConfigError::new(
            "",
            format!("value is not valid YAML: {}", p.message),
            "quote the value, or write it as YAML such as `true`, `10s` or `{\"enabled\": true}`",
        )
        .at(format!("env {name}"), None))
    })?;
    let mut node = parsed
        .root
        .unwrap_or_else(|| Node::new(Kind::Null, env_loc.clone()));
    node.set_origin(&var);
    // `REGISTRY_STORAGE=inmemory` names a driver without parameters.
    if segments.len() == 1
        && segments[0] == "STORAGE"
        && let Kind::Scalar { text, .. } = &node.kind
    {
        segments.push(text.to_uppercase());
        node = Node::new(Kind::Null, env_loc.clone());
    }
    let mut replaced = None;
    set(
        root,
        &schema::ROOT_SHAPE,
        &segments,
        "",
        node,
        &env_loc,
        &mut replaced,
    )
    .map_err(|()| Box::new(unknown_var(name)))?;
    Ok(replaced.map(|(old, new)| {
        format!("env {name}: the storage driver `{new}` set here replaces `{old}` from the configuration file")
    }))
}

/// Sets `value` at the path `segments` under `node`, whose shape is `shape`.
/// `Err(())` means the path names no key.
fn set(
    node: &mut Node,
    shape: &Shape,
    segments: &[String],
    path: &str,
    value: Node,
    env_loc: &Loc,
    replaced: &mut Option<(String, String)>,
) -> Result<(), ()> {
    let Some((segment, rest)) = segments.split_first() else {
        return Err(());
    };
    let (key, child_shape): (String, &Shape) = match shape {
        Shape::Map(fields) => {
            let field = fields
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(segment))
                .ok_or(())?;
            (field.name.to_owned(), &field.shape)
        }
        Shape::MapOf(inner) => (segment.to_lowercase(), inner),
        Shape::Any => (segment.to_lowercase(), &Shape::Any),
        _ => return Err(()),
    };
    if !matches!(node.kind, Kind::Map(_)) {
        *node = Node::new(Kind::Map(Vec::new()), env_loc.clone());
    }
    let Kind::Map(entries) = &mut node.kind else {
        return Err(());
    };
    if path == "storage" && STORAGE_DRIVERS.contains(&key.as_str()) {
        let before: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
        entries.retain(|e| e.key == key || !STORAGE_DRIVERS.contains(&e.key.as_str()));
        if let Some(old) = before
            .into_iter()
            .find(|k| *k != key && STORAGE_DRIVERS.contains(&k.as_str()))
        {
            *replaced = Some((old, key.clone()));
        }
    }
    // Keys of free-form maps match whatever case the file used.
    let index = match entries
        .iter()
        .position(|e| e.key.eq_ignore_ascii_case(&key))
    {
        Some(i) => i,
        None => {
            entries.push(Entry {
                key: key.clone(),
                loc: env_loc.clone(),
                value: Node::new(Kind::Null, env_loc.clone()),
            });
            entries.len() - 1
        }
    };
    let entry = &mut entries[index];
    if rest.is_empty() {
        entry.loc = env_loc.clone();
        entry.value = value;
        return Ok(());
    }
    set(
        &mut entry.value,
        child_shape,
        rest,
        &child_path(path, &key),
        value,
        env_loc,
        replaced,
    )
}
