//! Repository patterns: the one dialect in which the access policy's rules,
//! its `immutable` list and robot scopes name repositories. A pattern is
//! compiled once (when the policy or the robot record loads) and matched
//! without allocating.
//!
//! A pattern is split at `/` into segments:
//!
//! - `**` (a whole segment only) matches any number of segments. As in
//!   `.gitignore`, a trailing `/**` needs at least one more segment
//!   (`team/**` matches `team/app` and `team/a/b` but not `team` itself),
//!   while a leading `**/` or a middle `/**/` may match none (`**/cache`
//!   matches `cache` and `x/y/cache`; `a/**/b` matches `a/b`). A pattern of
//!   just `**` matches every repository.
//! - `*` as a whole segment matches exactly one segment; inside a segment
//!   (`app-*`) it matches any run of characters other than `/`.
//! - `${user}` stands for the caller's user name (for a robot, its owner's
//!   name). It never matches for anonymous callers, nor for a user name that
//!   contains a `/`, so a user can never reach past their own segment.
//! - Everything else is literal. Repository names are lower-case, so patterns
//!   must be too; `..`, empty segments and characters that cannot appear in a
//!   repository name are refused, since such a pattern could never match.

use std::fmt;

/// Why a pattern text was refused: what is wrong, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// What is wrong, naming the pattern.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}. Fix: {}", self.message, self.fix)
    }
}

impl std::error::Error for PatternError {}

fn err(message: impl Into<String>, fix: impl Into<String>) -> PatternError {
    PatternError {
        message: message.into(),
        fix: fix.into(),
    }
}

/// The literal `${user}` is replaced by this character while compiling; it
/// cannot appear in a valid pattern otherwise.
const USER_MARK: char = '\u{1}';
const USER_VAR: &str = "${user}";

#[derive(Debug, Clone)]
enum Atom {
    Lit(Box<str>),
    User,
}

/// How one segment of a pattern matches one segment of a repository name.
#[derive(Debug, Clone)]
enum Seg {
    /// Exactly this text.
    Lit(Box<str>),
    /// `*`: any one segment.
    Any,
    /// `${user}`: exactly the caller's name.
    User,
    /// Literal text, `${user}` and `*` mixed: `chunks` joined by `*`.
    Glob(Box<[Box<[Atom]>]>),
}

#[derive(Debug, Clone)]
enum Tok {
    Seg(Seg),
    /// Zero or more whole segments.
    AnyRun,
}

/// Fast paths for the shapes almost every policy uses.
#[derive(Debug, Clone)]
enum Shape {
    /// No wildcard and no `${user}`: string equality.
    Exact(Box<str>),
    /// Literal segments then a trailing `**`: the name starts with this text
    /// (which ends in `/`, or is empty for `**`) and is longer than it.
    Under(Box<str>),
    /// Anything else: segment matching with backtracking over `**`.
    General,
}

/// A compiled repository pattern. Two patterns are equal when their texts
/// are.
#[derive(Debug, Clone)]
pub struct RepoPattern {
    text: Box<str>,
    toks: Box<[Tok]>,
    shape: Shape,
}

/// The literal start of every name a pattern can match, for one caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prefix {
    /// The pattern matches nothing for this caller (`${user}` and no user).
    Never,
    /// Every match starts with this text; empty means it may match anything.
    Starts(String),
}

impl PartialEq for RepoPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for RepoPattern {}

impl std::hash::Hash for RepoPattern {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl fmt::Display for RepoPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl RepoPattern {
    /// Validates and compiles `text`.
    ///
    /// # Errors
    /// A [`PatternError`] naming the pattern, what is wrong and the fix.
    pub fn compile(text: &str) -> Result<Self, PatternError> {
        let marked = check_text(text)?;
        let segments: Vec<&str> = marked.split('/').collect();
        let last = segments.len() - 1;
        let mut toks: Vec<Tok> = Vec::with_capacity(segments.len() + 1);
        for (i, seg) in segments.iter().enumerate() {
            if seg.contains("***") {
                return Err(err(
                    format!("`***` in repository pattern `{text}`"),
                    "use `*` for exactly one path segment or `**` for any number of segments",
                ));
            }
            if seg.contains("**") && *seg != "**" {
                return Err(err(
                    format!("`**` must be a whole path segment, but `{text}` has `{seg}`"),
                    "write `**` between slashes, as in `team/**`; use `*` inside a segment, as in `app-*`",
                ));
            }
            if *seg == "**" {
                if i == last {
                    // A trailing `**` needs at least one segment.
                    toks.push(Tok::Seg(Seg::Any));
                    toks.push(Tok::AnyRun);
                } else if !matches!(toks.last(), Some(Tok::AnyRun)) {
                    toks.push(Tok::AnyRun);
                }
                continue;
            }
            toks.push(Tok::Seg(compile_segment(seg)));
        }
        let shape = shape_of(&toks);
        Ok(Self {
            text: text.into(),
            toks: toks.into(),
            shape,
        })
    }

    /// The pattern as written.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the pattern uses `${user}`.
    #[must_use]
    pub fn has_user(&self) -> bool {
        self.toks.iter().any(|t| match t {
            Tok::Seg(Seg::User) => true,
            Tok::Seg(Seg::Glob(chunks)) => chunks.iter().flatten().any(|a| matches!(a, Atom::User)),
            _ => false,
        })
    }

    /// The first segment when it is plain literal text, so rules can be
    /// indexed by it.
    #[must_use]
    pub fn first_literal(&self) -> Option<&str> {
        match self.toks.first() {
            Some(Tok::Seg(Seg::Lit(lit))) => Some(lit),
            _ => None,
        }
    }

    /// Whether the pattern matches every repository name (`**`).
    #[must_use]
    pub fn is_everything(&self) -> bool {
        matches!(&self.shape, Shape::Under(p) if p.is_empty())
    }

    /// Whether [`RepoPattern::matches`] looks at the segments (otherwise they may
    /// be left empty).
    #[must_use]
    pub fn needs_segments(&self) -> bool {
        matches!(self.shape, Shape::General)
    }

    /// Whether `repo` (whose segments are `segs`) matches, for a caller named
    /// `user` (`None` for anonymous). For a caller that decides against many
    /// patterns and splits the name once.
    #[must_use]
    pub fn matches(&self, repo: &str, segs: &[&str], user: Option<&str>) -> bool {
        match &self.shape {
            Shape::Exact(text) => **text == *repo,
            Shape::Under(prefix) => repo.len() > prefix.len() && repo.starts_with(&**prefix),
            Shape::General => match_toks(&self.toks, segs.iter().copied(), user),
        }
    }

    /// Whether `repo` matches, for a caller named `user` (`None` for
    /// anonymous): [`RepoPattern::matches`] without the split segments, and
    /// without allocating.
    #[must_use]
    pub fn matches_name(&self, repo: &str, user: Option<&str>) -> bool {
        match &self.shape {
            Shape::General => match_toks(&self.toks, repo.split('/'), user),
            _ => self.matches(repo, &[], user),
        }
    }

    /// The literal text every match starts with, for a caller named `user`.
    #[must_use]
    pub fn prefix(&self, user: Option<&str>) -> Prefix {
        if self.has_user() && !user.is_some_and(user_fits) {
            return Prefix::Never;
        }
        let user = user.unwrap_or_default();
        let mut out = String::new();
        for (i, tok) in self.toks.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            match tok {
                Tok::Seg(Seg::Lit(lit)) => out.push_str(lit),
                Tok::Seg(Seg::User) => out.push_str(user),
                Tok::Seg(Seg::Glob(chunks)) => {
                    for atom in chunks.first().into_iter().flatten() {
                        match atom {
                            Atom::Lit(lit) => out.push_str(lit),
                            Atom::User => out.push_str(user),
                        }
                    }
                    break;
                }
                Tok::Seg(Seg::Any) | Tok::AnyRun => break,
            }
        }
        Prefix::Starts(out)
    }
}

/// A user name can stand in for `${user}` only if it fits in one segment.
fn user_fits(user: &str) -> bool {
    !user.is_empty() && !user.contains('/')
}

/// Checks the characters of `text`, and returns it with every `${user}`
/// replaced by [`USER_MARK`].
fn check_text(text: &str) -> Result<String, PatternError> {
    if text.is_empty() {
        return Err(err(
            "empty repository pattern",
            "write a pattern such as `team/**`, or `**` for every repository",
        ));
    }
    let marked = text.replace(USER_VAR, &USER_MARK.to_string());
    if marked.contains(['$', '{', '}']) {
        return Err(variable_error(text, &marked));
    }
    if text.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(err(
            format!(
                "repository pattern `{text}` has upper-case letters, but repository names are lower-case"
            ),
            format!("write `{}`", text.to_ascii_lowercase()),
        ));
    }
    if let Some(c) = marked.chars().find(|&c| {
        !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/*".contains(c) || c == USER_MARK)
    }) {
        return Err(err(
            format!(
                "repository pattern `{text}` contains `{c}`, which cannot appear in a repository name"
            ),
            "use lower-case letters, digits, `.`, `_`, `-`, `/`, `*`, `**` and `${user}`",
        ));
    }
    if text.contains("..") {
        return Err(err(
            format!(
                "repository pattern `{text}` contains `..`, which cannot appear in a repository name"
            ),
            "patterns are not paths: name the repositories directly, as in `team/**`",
        ));
    }
    if marked.split('/').any(str::is_empty) {
        let fix = if let Some(stem) = text.strip_suffix('/') {
            format!("write `{stem}/**` to match every repository under `{stem}`")
        } else {
            "remove the doubled, leading or trailing `/`".to_owned()
        };
        return Err(err(
            format!("repository pattern `{text}` has an empty path segment"),
            fix,
        ));
    }
    Ok(marked)
}

/// The error for a `$`, `{` or `}` that is not part of `${user}`.
fn variable_error(text: &str, marked: &str) -> PatternError {
    let fix = format!("write `{USER_VAR}` for the caller's user name, as in `{USER_VAR}/**`");
    let lower = marked.to_ascii_lowercase();
    if let Some(start) = marked.find("${") {
        let name: String = marked[start + 2..]
            .chars()
            .take_while(|&c| c != '}')
            .collect();
        if name.eq_ignore_ascii_case("user") {
            return err(
                format!("`${{{name}}}` in `{text}`: the variable is written in lower case"),
                fix,
            );
        }
        return err(
            format!(
                "unknown variable `${{{name}}}` in `{text}`: the only variable is `{USER_VAR}`"
            ),
            fix,
        );
    }
    if lower.contains("$user") || lower.contains("{user}") || lower.contains("$(user)") {
        return err(format!("`{text}` misspells the variable `{USER_VAR}`"), fix);
    }
    err(
        format!("repository pattern `{text}` contains `$`, `{{` or `}}` outside `{USER_VAR}`"),
        fix,
    )
}

fn compile_segment(seg: &str) -> Seg {
    if seg == "*" {
        return Seg::Any;
    }
    if seg == USER_MARK.to_string() {
        return Seg::User;
    }
    if !seg.contains(['*', USER_MARK]) {
        return Seg::Lit(seg.into());
    }
    let chunks = seg
        .split('*')
        .map(|chunk| {
            let mut atoms = Vec::new();
            for (i, lit) in chunk.split(USER_MARK).enumerate() {
                if i > 0 {
                    atoms.push(Atom::User);
                }
                if !lit.is_empty() {
                    atoms.push(Atom::Lit(lit.into()));
                }
            }
            atoms.into_boxed_slice()
        })
        .collect();
    Seg::Glob(chunks)
}

fn shape_of(toks: &[Tok]) -> Shape {
    let mut lits = Vec::new();
    for (i, tok) in toks.iter().enumerate() {
        match tok {
            Tok::Seg(Seg::Lit(lit)) => lits.push(&**lit),
            Tok::Seg(Seg::Any) if i + 2 == toks.len() && matches!(toks[i + 1], Tok::AnyRun) => {
                let mut prefix = lits.join("/");
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                return Shape::Under(prefix.into());
            }
            _ => return Shape::General,
        }
    }
    Shape::Exact(lits.join("/").into())
}

/// Matches tokens against segments. `**` is the only token that spans a
/// variable number of segments, so the classic wildcard algorithm (resume
/// after the most recent `**`) is complete and runs in O(tokens × segments).
/// `segs` is an iterator (a split name, or an already split one) whose clone
/// marks a position, so nothing is allocated.
fn match_toks<'s>(
    toks: &[Tok],
    mut segs: impl Iterator<Item = &'s str> + Clone,
    user: Option<&str>,
) -> bool {
    let mut t = 0;
    let mut resume = None;
    loop {
        let mut after = segs.clone();
        let Some(seg) = after.next() else {
            break;
        };
        match toks.get(t) {
            Some(Tok::AnyRun) => {
                resume = Some((t + 1, segs.clone()));
                t += 1;
                continue;
            }
            Some(Tok::Seg(pat)) if match_seg(pat, seg, user) => {
                t += 1;
                segs = after;
                continue;
            }
            _ => {}
        }
        let Some((rt, rs)) = &mut resume else {
            return false;
        };
        // Let the last `**` swallow one more segment and try again.
        rs.next();
        t = *rt;
        segs = rs.clone();
    }
    toks[t..].iter().all(|tok| matches!(tok, Tok::AnyRun))
}

fn match_seg(seg: &Seg, text: &str, user: Option<&str>) -> bool {
    match seg {
        Seg::Lit(lit) => **lit == *text,
        Seg::Any => !text.is_empty(),
        Seg::User => user.is_some_and(|u| user_fits(u) && u == text),
        Seg::Glob(chunks) => user_ok(chunks, user) && match_glob(chunks, text, user),
    }
}

fn user_ok(chunks: &[Box<[Atom]>], user: Option<&str>) -> bool {
    let needs_user = chunks.iter().flatten().any(|a| matches!(a, Atom::User));
    !needs_user || user.is_some_and(user_fits)
}

/// If `text` starts with `chunk`, the length of that start.
fn chunk_at(chunk: &[Atom], text: &str, user: &str) -> Option<usize> {
    let mut rest = text;
    for atom in chunk {
        let lit = match atom {
            Atom::Lit(lit) => &**lit,
            Atom::User => user,
        };
        rest = rest.strip_prefix(lit)?;
    }
    Some(text.len() - rest.len())
}

fn chunk_len(chunk: &[Atom], user: &str) -> usize {
    chunk
        .iter()
        .map(|a| match a {
            Atom::Lit(lit) => lit.len(),
            Atom::User => user.len(),
        })
        .sum()
}

/// Matches `chunk0 * chunk1 * ... * chunkN` against one segment: the first
/// chunk anchors the start, the last the end, and each middle chunk takes its
/// leftmost place, which is always a correct choice when `*` is the only
/// wildcard.
fn match_glob(chunks: &[Box<[Atom]>], text: &str, user: Option<&str>) -> bool {
    let user = user.unwrap_or_default();
    let Some((first, rest)) = chunks.split_first() else {
        return text.is_empty();
    };
    let Some(mut pos) = chunk_at(first, text, user) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return pos == text.len();
    };
    let last_len = chunk_len(last, user);
    let Some(end) = text.len().checked_sub(last_len) else {
        return false;
    };
    if end < pos || !text.is_char_boundary(end) || chunk_at(last, &text[end..], user).is_none() {
        return false;
    }
    'chunks: for chunk in middle {
        for (i, _) in text[pos..end].char_indices() {
            if let Some(len) = chunk_at(chunk, &text[pos + i..end], user) {
                pos += i + len;
                continue 'chunks;
            }
        }
        if chunk.is_empty() {
            continue;
        }
        return false;
    }
    true
}
