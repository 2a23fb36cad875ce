//! The policy's view of the shared YAML tree (`portcullis-yaml`): parsed
//! strictly (a duplicate key or a bad merge is an error, not a warning), with
//! a larger node budget than a configuration gets, and with a hint for the
//! most common slip in a policy, an unquoted `*`.

use portcullis_yaml::{Cause, Node, Options, Problem, SYNTAX_FIX};

/// Most nodes a policy may hold, aliases expanded: policies list many users
/// and rules, so twice a configuration's budget.
const MAX_NODES: usize = 2_000_000;

/// Parses `text`, which must hold at most one YAML document. Returns `None`
/// for an empty document.
pub(super) fn parse(text: &str) -> Result<Option<Node>, Problem> {
    let options = Options {
        max_nodes: MAX_NODES,
        strict: true,
        ..Options::default()
    };
    match portcullis_yaml::parse_with(text, &options) {
        Ok(parsed) => Ok(parsed.root),
        Err(problem) => Err(explain(problem)),
    }
}

/// A policy's message names the duplicate key itself (its problems are not
/// prefixed with the key's path), and `*` starts a YAML alias, so an unquoted
/// `**` or `*` is not a string.
fn explain(mut problem: Problem) -> Problem {
    match &problem.cause {
        Cause::DuplicateKey { name, first_line } => {
            problem.message = format!("duplicate key `{name}` (first given at line {first_line})");
        }
        Cause::Syntax
            if problem.fix == SYNTAX_FIX
                && (problem.message.contains("alias") || problem.message.contains("anchor")) =>
        {
            problem.fix = "correct the YAML syntax at that line; quote patterns and actions that start with `*`, \
                 as in \"**\" and \"*\""
                .to_owned();
        }
        Cause::Syntax | Cause::BadMerge => {}
    }
    problem
}
