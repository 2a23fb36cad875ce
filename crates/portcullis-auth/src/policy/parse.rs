//! The policy's YAML, checked and turned into rules.
//!
//! Every problem is collected (not just the first), with the line it is on and
//! a fix, so `config check` can list them all at once.

use std::collections::HashSet;

use super::pattern::Pattern;
pub(super) use super::words::Subject;
use super::words::{parse_action, parse_subject};
use portcullis_yaml::{Entry, Kind, Node};

use super::{Effect, PolicyError};

/// Action bits. `catalog` is kept apart (see [`RuleSpec::catalog`]).
pub(super) const PULL: u8 = 1;
pub(super) const PUSH: u8 = 2;
pub(super) const DELETE: u8 = 4;
pub(super) const CATALOG: u8 = 8;
pub(super) const ALL: u8 = PULL | PUSH | DELETE | CATALOG;

/// One checked rule.
#[derive(Debug, Clone)]
pub(super) struct RuleSpec {
    /// Line of the rule, with the caller's offset applied.
    pub line: usize,
    pub effect: Effect,
    pub subjects: Vec<Subject>,
    pub patterns: Vec<Pattern>,
    /// `PULL | PUSH | DELETE` bits.
    pub actions: u8,
    /// Whether the rule allows or denies `catalog`: it names `catalog` or `*`
    /// and covers the whole registry (no `repositories`, or `**` among them).
    pub catalog: bool,
}

/// A checked policy, before indexing.
#[derive(Debug, Default)]
pub(super) struct Spec {
    /// Group name and members, in file order.
    pub groups: Vec<(String, Vec<String>)>,
    pub rules: Vec<RuleSpec>,
    pub immutable: Vec<Pattern>,
    pub warnings: Vec<PolicyError>,
}

const TOP_KEYS: &[&str] = &["groups", "rules", "immutable", "path"];
const RULE_KEYS: &[&str] = &[
    "subjects",
    "repositories",
    "actions",
    "effect",
    "description",
];

/// Where problems are collected.
struct Report<'a> {
    source: &'a str,
    offset: usize,
    errors: Vec<PolicyError>,
    warnings: Vec<PolicyError>,
}

impl Report<'_> {
    fn make(&self, line: usize, path: &str, message: &str, fix: impl Into<String>) -> PolicyError {
        PolicyError {
            source: self.source.to_owned(),
            line: (line > 0).then_some(line + self.offset),
            message: if path.is_empty() {
                message.to_owned()
            } else {
                format!("{path}: {message}")
            },
            fix: fix.into(),
        }
    }

    fn error(&mut self, line: usize, path: &str, message: &str, fix: impl Into<String>) {
        let e = self.make(line, path, message, fix);
        self.errors.push(e);
    }

    fn warn(&mut self, line: usize, path: &str, message: &str, fix: impl Into<String>) {
        let e = self.make(line, path, message, fix);
        self.warnings.push(e);
    }
}

/// The closest of `candidates` to `word`, if any is close.
pub(super) fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&word, c), *c))
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    nearest(word, candidates).map_or_else(String::new, |n| format!("did you mean `{n}`? "))
}

/// Parses and checks the policy in `text`. `allow_path` accepts a `path` key
/// (read by the caller) as in `config.yml`'s `access` section.
pub(super) fn parse(
    text: &str,
    source: &str,
    offset: usize,
    allow_path: bool,
) -> Result<Spec, Vec<PolicyError>> {
    let mut report = Report {
        source,
        offset,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let root = match super::yaml::parse(text) {
        Ok(root) => root,
        Err(problem) => {
            return Err(vec![report.make(
                problem.line,
                "",
                &problem.message,
                problem.fix,
            )]);
        }
    };
    let mut spec = Spec::default();
    let entries = match root.as_ref().map(|n| &n.kind) {
        None | Some(Kind::Null) => return Ok(spec),
        Some(Kind::Map(entries)) => match entries.as_slice() {
            // A file may keep the `access:` line it was copied with.
            [only] if only.key == "access" => match &only.value.kind {
                Kind::Map(inner) => inner.as_slice(),
                Kind::Null => return Ok(spec),
                _ => &[],
            },
            all => all,
        },
        Some(_) => &[],
    };
    if entries.is_empty() {
        let line = root.as_ref().map_or(0, |n| n.loc.line);
        report.error(
            line,
            "",
            "the access policy must be a map with `groups`, `rules` and `immutable`",
            "write `rules:` followed by a list of rules; see docs for examples",
        );
        return Err(report.errors);
    }

    let find = |key: &str| entries.iter().find(|e| e.key == key);
    for entry in entries {
        let known = if allow_path { TOP_KEYS } else { &TOP_KEYS[..3] };
        if !known.contains(&entry.key.as_str()) {
            let fix = format!(
                "{}the keys here are {}",
                did_you_mean(&entry.key, known),
                known.join(", ")
            );
            report.error(entry.loc.line, &entry.key, "unknown key", fix);
        }
    }
    if let Some(path) = find("path").filter(|_| allow_path) {
        if path.value.as_scalar().is_none_or(str::is_empty) {
            report.error(
                path.loc.line,
                "path",
                &format!("expected a file name, found {}", path.value.describe()),
                "write the path of the policy file, such as /etc/portcullis/access.yml",
            );
        }
        if let Some(other) = entries.iter().find(|e| e.key != "path") {
            report.error(
                other.loc.line,
                &other.key,
                "`path` names a policy file, so the policy cannot also be written here",
                "move groups, rules and immutable into the file that `path` names, or remove `path`",
            );
        }
    }
    if let Some(groups) = find("groups") {
        spec.groups = parse_groups(&mut report, groups);
    }
    let group_names: HashSet<&str> = spec.groups.iter().map(|(n, _)| n.as_str()).collect();
    if let Some(rules) = find("rules") {
        for (i, item) in list(&mut report, &rules.value, "rules", "a list of rules")
            .into_iter()
            .enumerate()
        {
            if let Some(rule) = parse_rule(&mut report, item, &format!("rules[{i}]"), &group_names)
            {
                spec.rules.push(rule);
            }
        }
    }
    if let Some(immutable) = find("immutable") {
        spec.immutable = parse_immutable(&mut report, &immutable.value);
    }
    if report.errors.is_empty() {
        spec.warnings = report.warnings;
        Ok(spec)
    } else {
        Err(report.errors)
    }
}

/// The items of a list; a single scalar counts as a list of one, and nothing
/// as an empty list.
fn list<'n>(report: &mut Report<'_>, node: &'n Node, path: &str, want: &str) -> Vec<&'n Node> {
    match &node.kind {
        Kind::Seq(items) => items.iter().collect(),
        Kind::Scalar { .. } => vec![node],
        Kind::Null => Vec::new(),
        Kind::Map(_) => {
            report.error(
                node.loc.line,
                path,
                &format!("expected {want}, found a map"),
                format!("write {want}, one `- item` per line or `[a, b]`"),
            );
            Vec::new()
        }
    }
}

fn scalar<'n>(report: &mut Report<'_>, node: &'n Node, path: &str, want: &str) -> Option<&'n str> {
    if let Some(text) = node.as_scalar() {
        return Some(text);
    }
    report.error(
        node.loc.line,
        path,
        &format!("expected {want}, found {}", node.describe()),
        format!("write {want} here"),
    );
    None
}

fn parse_groups(report: &mut Report<'_>, groups: &Entry) -> Vec<(String, Vec<String>)> {
    let entries = match &groups.value.kind {
        Kind::Map(entries) => entries.as_slice(),
        Kind::Null => &[],
        _ => {
            report.error(
                groups.loc.line,
                "groups",
                &format!(
                    "expected a map of group names to members, found {}",
                    groups.value.describe()
                ),
                "write `groups:` then one `NAME: [user1, user2]` per line",
            );
            &[]
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = format!("groups.{}", entry.key);
        if let Some(c) = entry
            .key
            .chars()
            .find(|&c| c == ':' || c.is_whitespace() || c.is_control())
        {
            report.error(
                entry.loc.line,
                &path,
                &format!("group name contains {c:?}"),
                "use a group name without `:`, spaces or control characters",
            );
            continue;
        }
        let mut members = Vec::new();
        for (i, member) in list(report, &entry.value, &path, "a list of user names")
            .into_iter()
            .enumerate()
        {
            let member_path = format!("{path}[{i}]");
            let Some(name) = scalar(report, member, &member_path, "a user name") else {
                continue;
            };
            if let Some(plain) = name.strip_prefix("user:") {
                report.error(
                    member.loc.line,
                    &member_path,
                    &format!("group members are plain user names, not `{name}`"),
                    format!("write `{plain}`"),
                );
            } else if let Err(e) = crate::identity::UserName::new(name) {
                report.error(
                    member.loc.line,
                    &member_path,
                    &format!("`{name}` is not a valid user name: {e}"),
                    "write the user's login name",
                );
            } else {
                members.push(name.to_owned());
            }
        }
        out.push((entry.key.clone(), members));
    }
    out
}

#[derive(Default)]
struct RuleParts {
    subjects: Option<(usize, Vec<Subject>)>,
    patterns: Option<(usize, Vec<Pattern>)>,
    actions: Option<(usize, u8)>,
    /// `catalog` written out (not just implied by `*`).
    explicit_catalog: bool,
    effect: Effect,
    failed: bool,
}

fn parse_rule(
    report: &mut Report<'_>,
    item: &Node,
    path: &str,
    groups: &HashSet<&str>,
) -> Option<RuleSpec> {
    let Kind::Map(entries) = &item.kind else {
        report.error(
            item.loc.line,
            path,
            &format!(
                "expected a rule (a map with subjects, repositories and actions), found {}",
                item.describe()
            ),
            "write each rule as `- subjects: [...]` followed by `repositories:` and `actions:`",
        );
        return None;
    };
    let errors_before = report.errors.len();
    let mut parts = RuleParts::default();
    for entry in entries {
        let key_path = format!("{path}.{}", entry.key);
        match entry.key.as_str() {
            "subjects" => {
                let mut subjects = Vec::new();
                for (i, node) in list(report, &entry.value, &key_path, "a list of subjects")
                    .into_iter()
                    .enumerate()
                {
                    let Some(text) = scalar(report, node, &format!("{key_path}[{i}]"), "a subject")
                    else {
                        continue;
                    };
                    match parse_subject(text, groups) {
                        Ok(s) if !subjects.contains(&s) => subjects.push(s),
                        Ok(_) => {}
                        Err((message, fix)) => {
                            report.error(node.loc.line, &key_path, &message, fix)
                        }
                    }
                }
                parts.subjects = Some((entry.loc.line, subjects));
            }
            "repositories" => {
                let mut patterns = Vec::new();
                for (i, node) in list(
                    report,
                    &entry.value,
                    &key_path,
                    "a list of repository patterns",
                )
                .into_iter()
                .enumerate()
                {
                    let Some(text) = scalar(
                        report,
                        node,
                        &format!("{key_path}[{i}]"),
                        "a repository pattern",
                    ) else {
                        continue;
                    };
                    match Pattern::compile(text) {
                        Ok(p) => patterns.push(p),
                        Err(e) => report.error(node.loc.line, &key_path, &e.message, e.fix),
                    }
                }
                parts.patterns = Some((entry.loc.line, patterns));
            }
            "actions" => {
                let mut bits = 0;
                for (i, node) in list(report, &entry.value, &key_path, "a list of actions")
                    .into_iter()
                    .enumerate()
                {
                    let Some(text) = scalar(report, node, &format!("{key_path}[{i}]"), "an action")
                    else {
                        continue;
                    };
                    match parse_action(text) {
                        Ok(b) => {
                            bits |= b;
                            parts.explicit_catalog |= b == CATALOG;
                        }
                        Err(fix) => report.error(
                            node.loc.line,
                            &key_path,
                            &format!("unknown action `{text}`"),
                            fix,
                        ),
                    }
                }
                parts.actions = Some((entry.loc.line, bits));
            }
            "effect" => {
                let text =
                    scalar(report, &entry.value, &key_path, "allow or deny").unwrap_or_default();
                match text.to_ascii_lowercase().as_str() {
                    "allow" => parts.effect = Effect::Allow,
                    "deny" => parts.effect = Effect::Deny,
                    "" => {}
                    _ => report.error(
                        entry.value.loc.line,
                        &key_path,
                        &format!("unknown effect `{text}`"),
                        format!(
                            "{}write allow (the default) or deny",
                            did_you_mean(text, &["allow", "deny"])
                        ),
                    ),
                }
            }
            "description" => {}
            other => {
                let fix = format!(
                    "{}a rule has the keys {}",
                    did_you_mean(other, RULE_KEYS),
                    RULE_KEYS.join(", ")
                );
                report.error(entry.loc.line, &key_path, "unknown key", fix);
            }
        }
    }
    parts.failed = report.errors.len() > errors_before;
    finish_rule(report, item.loc.line, path, parts)
}

/// Checks that need the whole rule.
fn finish_rule(
    report: &mut Report<'_>,
    line: usize,
    path: &str,
    parts: RuleParts,
) -> Option<RuleSpec> {
    let mut ok = !parts.failed;
    // A key that is absent, or present with an empty list (reported at its
    // own line), unless its items already failed.
    let mut need =
        |report: &mut Report<'_>, given: Option<usize>, empty: bool, key: &str, fix: &str| {
            if empty && !parts.failed {
                match given {
                    None => report.error(line, path, &format!("missing `{key}`"), fix),
                    Some(at) => {
                        report.error(at, &format!("{path}.{key}"), "the list is empty", fix)
                    }
                }
                ok = false;
            }
        };
    let subjects_given = parts.subjects.as_ref().map(|s| s.0);
    let (subjects_line, subjects) = parts.subjects.unwrap_or((line, Vec::new()));
    let actions_given = parts.actions.map(|a| a.0);
    let (actions_line, actions) = parts.actions.unwrap_or((line, 0));
    need(
        report,
        subjects_given,
        subjects.is_empty(),
        "subjects",
        "add `subjects:`, such as `subjects: [authenticated]`",
    );
    need(
        report,
        actions_given,
        actions == 0,
        "actions",
        "add `actions:`, such as `actions: [pull]`",
    );
    let everywhere = match &parts.patterns {
        None => {
            // Only a catalog-only rule may leave out repositories.
            let catalog_only = actions & !CATALOG == 0;
            need(
                report,
                None,
                !catalog_only,
                "repositories",
                "add `repositories:`, such as `repositories: [\"team/**\"]`, or `[\"**\"]` for every repository",
            );
            true
        }
        Some((repos_line, patterns)) => {
            if patterns.is_empty() && !parts.failed {
                report.error(
                    *repos_line,
                    &format!("{path}.repositories"),
                    "lists no repositories",
                    "list at least one pattern, or `\"**\"` for every repository",
                );
                ok = false;
            }
            patterns.iter().any(Pattern::is_everything)
        }
    };
    if !ok {
        return None;
    }
    let patterns = parts.patterns.map(|(_, p)| p).unwrap_or_default();
    if parts.explicit_catalog && !everywhere {
        report.error(
            actions_line,
            &format!("{path}.actions"),
            "`catalog` is registry-wide, but this rule is limited to some repositories",
            "give `catalog` a rule of its own without `repositories` (the catalog lists only the repositories the caller may pull)",
        );
        return None;
    }
    if subjects.iter().all(|s| *s == Subject::Anonymous)
        && let Some(p) = patterns.iter().find(|p| p.has_user())
    {
        report.error(
            line,
            &format!("{path}.repositories"),
            &format!(
                "`{}` uses `${{user}}`, which never matches for anonymous",
                p.text()
            ),
            "name the signed-in users, as in `subjects: [authenticated]`",
        );
        return None;
    }
    if parts.effect == Effect::Allow {
        for subject in subjects.iter().filter(|s| matches!(s, Subject::Robot(_))) {
            report.warn(
                subjects_line,
                &format!("{path}.subjects"),
                &format!("allowing `{subject}` has no effect: a robot may do at most what its owner may do"),
                "remove it; narrow a robot with its token's scope or with a deny rule naming it",
            );
        }
    }
    Some(RuleSpec {
        line: line + report.offset,
        effect: parts.effect,
        subjects,
        patterns,
        actions: actions & !CATALOG,
        catalog: actions & CATALOG != 0 && everywhere,
    })
}

fn parse_immutable(report: &mut Report<'_>, node: &Node) -> Vec<Pattern> {
    let mut out = Vec::new();
    for (i, item) in list(report, node, "immutable", "a list of repository patterns")
        .into_iter()
        .enumerate()
    {
        let path = format!("immutable[{i}]");
        let Some(text) = scalar(report, item, &path, "a repository pattern") else {
            continue;
        };
        match Pattern::compile(text) {
            Ok(p) if p.has_user() => report.error(
                item.loc.line,
                &path,
                &format!("`{text}` uses `${{user}}`, but immutability does not depend on who asks"),
                "name the repositories directly, as in `release/**`",
            ),
            Ok(p) => out.push(p),
            Err(e) => report.error(item.loc.line, &path, &e.message, e.fix),
        }
    }
    out
}
