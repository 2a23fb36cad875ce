//! The `access:` section (portcullis's per-repository policy). The config
//! crate does not interpret rules; it hands the section's text, with the
//! line it starts on, to the policy parser in `portcullis-auth`, so policy
//! errors and explanations name lines of the user's own file. Only
//! `access.path` (a policy kept in its own file) is read here.

use std::path::PathBuf;

/// Where the policy comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessSection {
    /// `access.path`: a policy file, reloaded when it changes.
    pub path: Option<PathBuf>,
    /// The inline section (its keys `groups`, `rules`, `immutable`).
    pub inline: Option<InlineText>,
}

/// YAML text of an inline `access:` mapping, dedented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlineText {
    pub text: String,
    /// The file line just before the text's first line.
    pub line_offset: usize,
    /// The configuration's source name, for messages.
    pub source: String,
}

/// Cuts the block of the top-level key `key` out of YAML text: the lines after
/// `key:` up to the next line that starts at column 0 with something other than
/// a comment. Returns the dedented text and the line of `key:` (1-based).
pub(crate) fn top_level_block(text: &str, key: &str) -> Option<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let head = format!("{key}:");
    let start = lines.iter().position(|l| l.starts_with(&head))?;
    let rest_of_head = lines[start][head.len()..].trim();
    if !rest_of_head.is_empty() && !rest_of_head.starts_with('#') {
        // Flow style on one line: `access: {rules: [...]}`.
        return Some((rest_of_head.to_owned(), start));
    }
    let body: Vec<&str> = lines[start + 1..]
        .iter()
        .take_while(|l| l.is_empty() || l.starts_with([' ', '\t', '#']))
        .copied()
        .collect();
    let indent = body
        .iter()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let dedented: Vec<&str> = body
        .iter()
        .map(|l| {
            if l.len() >= indent {
                &l[indent..]
            } else {
                l.trim_start()
            }
        })
        .collect();
    Some((dedented.join("\n"), start + 1))
}

#[cfg(test)]
mod tests {
    use super::top_level_block;

    #[test]
    fn cuts_the_block() {
        let text = "version: 0.1\naccess:\n  groups:\n    devs: [a]\n  # note\n  rules: []\nstorage: inmemory\n";
        let (block, line) = top_level_block(text, "access").unwrap();
        assert_eq!(line, 2);
        assert_eq!(block, "groups:\n  devs: [a]\n# note\nrules: []");
        assert!(top_level_block(text, "nope").is_none());
        let (flow, _) = top_level_block("access: {rules: []}\n", "access").unwrap();
        assert_eq!(flow, "{rules: []}");
    }
}
