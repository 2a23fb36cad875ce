//! How the policy's explanations name callers and lists: control
//! characters never reach a log line or an error message.

use std::fmt;

use super::Principal;

/// `a` for one item, `[a, b]` for several.
pub(super) fn show_list<T: fmt::Display>(items: impl ExactSizeIterator<Item = T>) -> String {
    let many = items.len() > 1;
    let joined = items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    if many { format!("[{joined}]") } else { joined }
}

/// Appends `text` with control characters replaced, so an explanation stays
/// one line whatever a caller's name holds.
pub(super) fn push_clean(out: &mut String, text: &str) {
    out.extend(text.chars().map(|c| if c.is_control() { '?' } else { c }));
}

pub(super) fn describe(who: &Principal) -> String {
    let mut out = String::new();
    match who {
        Principal::Anonymous => out.push_str("anonymous"),
        Principal::User(name) | Principal::Member { name, .. } => {
            out.push_str("user ");
            push_clean(&mut out, name);
        }
        Principal::Robot { name, owner } => {
            out.push_str("robot ");
            push_clean(&mut out, name);
            out.push_str(" (owner ");
            push_clean(&mut out, owner);
            out.push(')');
        }
    }
    out
}
