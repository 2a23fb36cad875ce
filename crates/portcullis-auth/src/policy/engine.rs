//! The compiled policy: rules indexed by subject and by the first segment of
//! their repository patterns, so that a decision looks at a handful of rules
//! whatever the size of the policy.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt::{self, Write as _};

use super::describe::{describe, push_clean, show_list};
use super::parse::{self, DELETE, PULL, PUSH, Spec, Subject};
use super::pattern::{Pattern, Prefix};
use super::{Action, Decision, Effect, PolicyError, Principal, RuleRef};

/// What a policy does when it has no rules of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Decide by the rules.
    Rules,
    /// No access section: every authenticated caller may do everything.
    Authenticated,
    /// No authentication at all: everyone may do everything.
    Everyone,
}

/// One rule, as shown in explanations.
#[derive(Debug)]
struct Rule {
    line: usize,
    effect: Effect,
    subjects: String,
    repositories: String,
}

/// One (rule, pattern) pair in a [`RuleSet`].
#[derive(Debug, Clone, Copy)]
struct Entry {
    rule: u32,
    pattern: u32,
    actions: u8,
    deny: bool,
}

/// The rules that name one subject.
#[derive(Debug, Default)]
struct RuleSet {
    /// Entries whose pattern starts with a literal segment, by that segment.
    by_first: HashMap<Box<str>, Vec<Entry>>,
    /// Entries whose pattern starts with a wildcard or `${user}`.
    other: Vec<Entry>,
    /// Rules that allow or deny `catalog`: (rule, is deny).
    catalog: Vec<(u32, bool)>,
}

impl RuleSet {
    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.by_first.values().flatten().chain(&self.other)
    }
}

/// A user named in the policy: the rules naming them and their groups.
#[derive(Debug, Default)]
struct Member {
    rules: RuleSet,
    groups: Vec<u32>,
}

/// An access policy: who may pull, push, delete and list the catalog, where.
///
/// Immutable once built; share it in an `Arc`. See the [module
/// documentation](super) for the rules' meaning.
pub struct Policy {
    mode: Mode,
    source: String,
    rules: Vec<Rule>,
    patterns: Vec<Pattern>,
    anonymous: RuleSet,
    authenticated: RuleSet,
    users: HashMap<Box<str>, Member>,
    groups: Vec<RuleSet>,
    /// Group ids by name, for groups an identity provider names.
    group_ids: HashMap<Box<str>, u32>,
    /// Deny rules naming `robot:NAME`, by name.
    robots: HashMap<Box<str>, RuleSet>,
    immutable: Vec<Pattern>,
    warnings: Vec<PolicyError>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("mode", &self.mode)
            .field("source", &self.source)
            .field("rules", &self.rules.len())
            .field("groups", &self.groups.len())
            .field("immutable", &self.immutable.len())
            .finish_non_exhaustive()
    }
}

/// The repository and action being decided, with the name split into
/// segments only when a pattern needs them.
struct Target<'a> {
    repo: &'a str,
    first: &'a str,
    segs: OnceCell<Vec<&'a str>>,
    bit: u8,
    catalog: bool,
}

impl<'a> Target<'a> {
    fn new(repo: &'a str, action: Action) -> Self {
        let bit = match action {
            Action::Pull => PULL,
            Action::Push => PUSH,
            Action::Delete => DELETE,
            Action::Catalog => 0,
        };
        Self {
            repo,
            first: repo.split('/').next().unwrap_or_default(),
            segs: OnceCell::new(),
            bit,
            catalog: action == Action::Catalog,
        }
    }

    fn segs(&self) -> &[&'a str] {
        self.segs.get_or_init(|| self.repo.split('/').collect())
    }
}

/// The lowest-numbered matching allow and deny rules seen so far.
#[derive(Debug, Clone, Copy)]
struct Acc {
    allow: u32,
    deny: u32,
}

const NONE: u32 = u32::MAX;

impl Acc {
    fn new() -> Self {
        Self {
            allow: NONE,
            deny: NONE,
        }
    }

    fn outcome(self) -> Outcome {
        if self.deny != NONE {
            Outcome::Denied(self.deny)
        } else if self.allow != NONE {
            Outcome::Allowed(self.allow)
        } else {
            Outcome::NoRule
        }
    }
}

/// Why a decision came out the way it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed(u32),
    Denied(u32),
    NoRule,
    /// A built-in policy ([`Mode`]) decided.
    BuiltIn(bool),
}

impl Outcome {
    fn allowed(self) -> bool {
        matches!(self, Self::Allowed(_) | Self::BuiltIn(true))
    }
}

impl Policy {
    fn with_mode(mode: Mode, source: &str) -> Self {
        Self {
            mode,
            source: source.to_owned(),
            rules: Vec::new(),
            patterns: Vec::new(),
            anonymous: RuleSet::default(),
            authenticated: RuleSet::default(),
            users: HashMap::new(),
            groups: Vec::new(),
            group_ids: HashMap::new(),
            robots: HashMap::new(),
            immutable: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Whether `user` is in the group called `group`: listed under the
    /// policy's `groups`, or named by their identity provider
    /// (`provider_groups`) when the policy defines that group.
    #[must_use]
    pub fn in_group(&self, user: &str, provider_groups: &[String], group: &str) -> bool {
        let Some(id) = self.group_ids.get(group) else {
            return false;
        };
        provider_groups.iter().any(|g| g == group)
            || self.users.get(user).is_some_and(|m| m.groups.contains(id))
    }

    /// A policy with no rules: it denies everything to everyone.
    #[must_use]
    pub fn empty() -> Self {
        Self::with_mode(Mode::Rules, "empty policy")
    }

    /// The policy when the configuration has no `access` section, as with
    /// registry:2 and htpasswd: every authenticated caller (user or robot)
    /// may do everything, including `catalog`; anonymous callers may do
    /// nothing. No repository is immutable.
    #[must_use]
    pub fn allow_all() -> Self {
        Self::with_mode(Mode::Authenticated, "no access policy")
    }

    /// Everyone, anonymous included, may do everything: for a registry with
    /// no authentication at all, as registry:2 without an `auth` section.
    #[must_use]
    pub fn open() -> Self {
        Self::with_mode(Mode::Everyone, "no authentication")
    }

    /// Parses the `access` mapping: YAML whose keys are `groups`, `rules`,
    /// `immutable` and (ignored here, read by the caller) `path`.
    ///
    /// `source` names the file in messages and [`RuleRef`]s. `line_offset`
    /// is added to every line number: a line `n` (1-based) of `text` is
    /// reported as `n + line_offset`, so pass the number of lines of the file
    /// that come before `text` (0 for a file of its own).
    ///
    /// # Errors
    /// The first problem found; [`Policy::from_yaml_all`] returns them all.
    pub fn from_yaml(text: &str, source: &str, line_offset: usize) -> Result<Self, PolicyError> {
        Self::from_yaml_all(text, source, line_offset).map_err(|mut errors| errors.swap_remove(0))
    }

    /// Like [`Policy::from_yaml`], but returns every problem, in file order.
    ///
    /// # Errors
    /// Every problem found (never an empty list).
    pub fn from_yaml_all(
        text: &str,
        source: &str,
        line_offset: usize,
    ) -> Result<Self, Vec<PolicyError>> {
        parse::parse(text, source, line_offset, true).map(|spec| Self::build(spec, source))
    }

    /// Parses a policy file of its own (which cannot name another `path`).
    pub(super) fn from_file_text(text: &str, source: &str) -> Result<Self, Vec<PolicyError>> {
        parse::parse(text, source, 0, false).map(|spec| Self::build(spec, source))
    }

    fn build(spec: Spec, source: &str) -> Self {
        let mut policy = Self::with_mode(Mode::Rules, source);
        let mut group_ids = HashMap::new();
        for (id, (name, members)) in spec.groups.into_iter().enumerate() {
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            for member in members {
                let groups = &mut policy.users.entry(member.into()).or_default().groups;
                if !groups.contains(&id) {
                    groups.push(id);
                }
            }
            policy.group_ids.insert(name.as_str().into(), id);
            group_ids.insert(name, id);
            policy.groups.push(RuleSet::default());
        }
        for (index, rule) in spec.rules.into_iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let deny = rule.effect == Effect::Deny;
            let mut entries = Vec::with_capacity(rule.patterns.len());
            for pattern in &rule.patterns {
                let id = u32::try_from(policy.patterns.len()).unwrap_or(u32::MAX);
                let first = pattern.first_literal().map(Box::<str>::from);
                policy.patterns.push(pattern.clone());
                let entry = Entry {
                    rule: index,
                    pattern: id,
                    actions: rule.actions,
                    deny,
                };
                if rule.actions != 0 {
                    entries.push((first, entry));
                }
            }
            for subject in &rule.subjects {
                let set = match subject {
                    Subject::Anonymous => &mut policy.anonymous,
                    Subject::Authenticated => &mut policy.authenticated,
                    Subject::User(name) => {
                        &mut policy.users.entry(name.as_str().into()).or_default().rules
                    }
                    Subject::Group(name) => match group_ids.get(name) {
                        Some(&id) => &mut policy.groups[id as usize],
                        None => continue,
                    },
                    // An allow rule cannot widen a robot beyond its owner.
                    Subject::Robot(_) if !deny => continue,
                    Subject::Robot(name) => policy.robots.entry(name.as_str().into()).or_default(),
                };
                for (first, entry) in &entries {
                    match first {
                        Some(first) => set.by_first.entry(first.clone()).or_default().push(*entry),
                        None => set.other.push(*entry),
                    }
                }
                if rule.catalog {
                    set.catalog.push((index, deny));
                }
            }
            policy.rules.push(Rule {
                line: rule.line,
                effect: rule.effect,
                subjects: show_list(rule.subjects.iter()),
                repositories: show_list(rule.patterns.iter()),
            });
        }
        policy.immutable = spec.immutable;
        policy.warnings = spec.warnings;
        policy
    }

    /// Problems that do not stop the policy from working, such as an allow
    /// rule naming a robot (which has no effect). Log them at startup.
    #[must_use]
    pub fn warnings(&self) -> &[PolicyError] {
        &self.warnings
    }

    /// How many rules the policy has.
    #[must_use]
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Whether `who` may do `action` on the repository `repo`, and why. For
    /// [`Action::Catalog`], `repo` is ignored.
    ///
    /// `repo` should be a valid repository name; anything else is compared
    /// literally.
    #[must_use]
    pub fn decide(&self, who: &Principal, repo: &str, action: Action) -> Decision {
        let outcome = self.evaluate(who, repo, action);
        self.explain(who, repo, action, outcome)
    }

    /// [`Policy::decide`] without the explanation: for filtering many names.
    #[must_use]
    pub fn allows(&self, who: &Principal, repo: &str, action: Action) -> bool {
        self.evaluate(who, repo, action).allowed()
    }

    /// Whether the existing tags of `repo` may not be moved or deleted.
    #[must_use]
    pub fn is_immutable(&self, repo: &str) -> bool {
        if self.immutable.is_empty() {
            return false;
        }
        let target = Target::new(repo, Action::Pull);
        self.immutable.iter().any(|p| {
            let segs = if p.needs_segments() {
                target.segs()
            } else {
                &[]
            };
            p.matches(repo, segs, None)
        })
    }

    /// For the catalog: the literal prefixes of every name `who` may pull,
    /// sorted, with none inside another (`["alice/", "team/"]`); or `None`
    /// when some rule may match any name (`**`, `*/x`), so every name must be
    /// tested. Deny rules are not reflected: call [`Policy::allows`] on each
    /// candidate. An exact pattern `team/app` gives the prefix `team/app`,
    /// which `team/apple` also starts with.
    #[must_use]
    pub fn pull_prefixes(&self, who: &Principal) -> Option<Vec<String>> {
        let user = who.user_name();
        let extra = self.provider_groups(who);
        match self.mode {
            Mode::Everyone => return None,
            Mode::Authenticated => return user.map_or_else(|| Some(Vec::new()), |_| None),
            Mode::Rules => {}
        }
        let mut prefixes = Vec::new();
        for set in self.sets_for(user, &extra) {
            for entry in set.entries() {
                if entry.deny || entry.actions & PULL == 0 {
                    continue;
                }
                match self.patterns[entry.pattern as usize].prefix(user) {
                    Prefix::Never => {}
                    Prefix::Starts(p) if p.is_empty() => return None,
                    Prefix::Starts(p) => prefixes.push(p),
                }
            }
        }
        prefixes.sort_unstable();
        prefixes.dedup();
        let mut out: Vec<String> = Vec::with_capacity(prefixes.len());
        for p in prefixes {
            // Sorted, so a prefix of `p` already kept is the last one kept.
            if !out.last().is_some_and(|last| p.starts_with(last.as_str())) {
                out.push(p);
            }
        }
        Some(out)
    }

    /// The rule sets that apply to a caller: anonymous for everyone, then for
    /// a signed-in user authenticated, their own and their groups'.
    fn sets_for<'p>(
        &'p self,
        user: Option<&str>,
        extra: &'p [u32],
    ) -> impl Iterator<Item = &'p RuleSet> {
        let member = user.and_then(|u| self.users.get(u));
        std::iter::once(&self.anonymous)
            .chain(user.map(|_| &self.authenticated))
            .chain(member.map(|m| &m.rules))
            .chain(
                member
                    .into_iter()
                    .flat_map(|m| m.groups.iter())
                    .chain(
                        extra
                            .iter()
                            .filter(move |g| member.is_none_or(|m| !m.groups.contains(g))),
                    )
                    .map(|&g| &self.groups[g as usize]),
            )
    }

    /// The ids of the policy's groups that `who`'s identity provider named.
    fn provider_groups(&self, who: &Principal) -> Vec<u32> {
        let Principal::Member { groups, .. } = who else {
            return Vec::new();
        };
        let mut ids: Vec<u32> = groups
            .iter()
            .filter_map(|g| self.group_ids.get(g.as_str()).copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    fn evaluate(&self, who: &Principal, repo: &str, action: Action) -> Outcome {
        match self.mode {
            Mode::Everyone => return Outcome::BuiltIn(true),
            Mode::Authenticated => return Outcome::BuiltIn(*who != Principal::Anonymous),
            Mode::Rules => {}
        }
        let target = Target::new(repo, action);
        let mut acc = Acc::new();
        match who {
            Principal::Anonymous => self.visit(&self.anonymous, &target, None, true, &mut acc),
            Principal::User(name) => self.visit_user(name, &[], &target, &mut acc),
            Principal::Member { name, .. } => {
                let extra = self.provider_groups(who);
                self.visit_user(name, &extra, &target, &mut acc);
            }
            Principal::Robot { name, owner } => {
                self.visit_user(owner, &[], &target, &mut acc);
                if acc.deny == NONE
                    && acc.allow != NONE
                    && let Some(set) = self.robots.get(name.as_str())
                {
                    let mut robot = Acc::new();
                    self.visit(set, &target, Some(owner), true, &mut robot);
                    if robot.deny != NONE {
                        return Outcome::Denied(robot.deny);
                    }
                }
            }
        }
        acc.outcome()
    }

    fn visit_user(&self, user: &str, extra: &[u32], target: &Target<'_>, acc: &mut Acc) {
        // Allow rules for anonymous extend to everyone; their deny rules
        // only bind anonymous callers.
        self.visit(&self.anonymous, target, Some(user), false, acc);
        for set in self.sets_for(Some(user), extra).skip(1) {
            self.visit(set, target, Some(user), true, acc);
        }
    }

    fn visit(
        &self,
        set: &RuleSet,
        target: &Target<'_>,
        user: Option<&str>,
        with_denies: bool,
        acc: &mut Acc,
    ) {
        if target.catalog {
            for &(rule, deny) in &set.catalog {
                if deny && with_denies {
                    acc.deny = acc.deny.min(rule);
                } else if !deny {
                    acc.allow = acc.allow.min(rule);
                }
            }
            return;
        }
        if let Some(entries) = set.by_first.get(target.first) {
            self.visit_entries(entries, target, user, with_denies, acc);
        }
        self.visit_entries(&set.other, target, user, with_denies, acc);
    }

    fn visit_entries(
        &self,
        entries: &[Entry],
        target: &Target<'_>,
        user: Option<&str>,
        with_denies: bool,
        acc: &mut Acc,
    ) {
        for e in entries {
            if e.actions & target.bit == 0 {
                continue;
            }
            // Only a lower-numbered match could change the outcome.
            let useful = if e.deny {
                with_denies && e.rule < acc.deny
            } else {
                acc.deny == NONE && e.rule < acc.allow
            };
            if useful && self.matches(e.pattern, target, user) {
                if e.deny {
                    acc.deny = e.rule;
                } else {
                    acc.allow = e.rule;
                }
            }
        }
    }

    fn matches(&self, pattern: u32, target: &Target<'_>, user: Option<&str>) -> bool {
        let pattern = &self.patterns[pattern as usize];
        let segs = if pattern.needs_segments() {
            target.segs()
        } else {
            &[]
        };
        pattern.matches(target.repo, segs, user)
    }

    fn explain(&self, who: &Principal, repo: &str, action: Action, outcome: Outcome) -> Decision {
        let mut what = action.to_string();
        if action != Action::Catalog {
            what.push_str(" on ");
            push_clean(&mut what, repo);
        }
        let who_text = describe(who);
        let (allowed, rule, explanation) = match outcome {
            Outcome::Allowed(r) | Outcome::Denied(r) => {
                let r = r as usize;
                let rule = &self.rules[r];
                let verb = if rule.effect == Effect::Deny {
                    "denies"
                } else {
                    "allows"
                };
                let mut text = format!(
                    "{}: rule {} at {}:{} (subjects {}",
                    rule.effect,
                    r + 1,
                    self.source,
                    rule.line,
                    rule.subjects
                );
                if !rule.repositories.is_empty() {
                    let _ = write!(text, ", repositories {}", rule.repositories);
                }
                let _ = write!(text, ") {verb} {what} for {who_text}");
                let rule_ref = RuleRef {
                    source: self.source.clone(),
                    line: rule.line,
                    index: r,
                    effect: rule.effect,
                };
                (rule.effect == Effect::Allow, Some(rule_ref), text)
            }
            Outcome::NoRule => (
                false,
                None,
                format!(
                    "deny: no rule allows {what} for {who_text} (nothing is allowed by default)"
                ),
            ),
            Outcome::BuiltIn(allowed) => {
                let text = match (self.mode, allowed) {
                    (Mode::Everyone, _) => format!(
                        "allow: {what} for {who_text}: without authentication, everyone may do everything"
                    ),
                    (_, true) => format!(
                        "allow: {what} for {who_text}: with no access policy configured, every signed-in user may do everything"
                    ),
                    (_, false) => format!(
                        "deny: {what} for {who_text}: with no access policy configured, anonymous callers may do nothing (sign in)"
                    ),
                };
                (allowed, None, text)
            }
        };
        Decision {
            allowed,
            rule,
            explanation,
        }
    }
}
