//! Unit tests of the tree: lines, nesting, scalars, aliases, merges, errors.

use std::sync::Arc;

use super::*;

fn map(node: &Node) -> &[Entry] {
    match &node.kind {
        Kind::Map(entries) => entries,
        other => panic!("not a map: {other:?}"),
    }
}

fn seq(node: &Node) -> &[Node] {
    match &node.kind {
        Kind::Seq(items) => items,
        other => panic!("not a list: {other:?}"),
    }
}

fn scalar(node: &Node) -> (&str, bool) {
    match &node.kind {
        Kind::Scalar { text, plain } => (text, *plain),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn root(text: &str) -> Node {
    parse(text).unwrap().root.unwrap()
}

fn strict() -> Options {
    Options {
        strict: true,
        ..Options::default()
    }
}

#[test]
fn keeps_lines_and_text() {
    let root = root("# comment\nversion: 0.1\nhttp:\n  addr: \":5000\"\n  tls:\n\nlist: [a, b]\n");
    let entries = map(&root);
    assert_eq!(entries[0].key, "version");
    assert_eq!(entries[0].loc, Loc::at_line(2));
    assert_eq!(scalar(&entries[0].value), ("0.1", true));
    let http = map(&entries[1].value);
    assert_eq!(http[0].loc.line, 4);
    assert_eq!(scalar(&http[0].value), (":5000", false));
    assert_eq!(http[1].value.kind, Kind::Null);
    assert_eq!(seq(&entries[2].value).len(), 2);
    assert_eq!(entries[2].value.line(), 7);
}

#[test]
fn nested_maps_and_lists_keep_their_lines() {
    let text = "rules:\n  - subjects: [a, \"b\"]\n    actions:\n      - pull\n      - push\n  - subjects: c\n";
    let root = root(text);
    let rules = seq(&map(&root)[0].value);
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].line(), 2);
    let first = map(&rules[0]);
    assert_eq!(first[0].key, "subjects");
    assert_eq!(first[0].loc.line, 2);
    let subjects = seq(&first[0].value);
    assert_eq!(scalar(&subjects[0]), ("a", true));
    assert_eq!(scalar(&subjects[1]), ("b", false));
    let actions = seq(&first[1].value);
    assert_eq!(first[1].loc.line, 3);
    assert_eq!(
        actions.iter().map(Node::line).collect::<Vec<_>>(),
        [4, 5],
        "{actions:?}"
    );
    assert_eq!(actions[1].as_scalar(), Some("push"));
    assert_eq!(map(&rules[1])[0].loc.line, 6);
}

#[test]
fn nulls_and_quoted_nulls() {
    let root = root("a: ~\nb: null\nc: \"null\"\nd: ''\ne:\n");
    let e = map(&root);
    assert_eq!(e[0].value.kind, Kind::Null);
    assert_eq!(e[1].value.kind, Kind::Null);
    assert_eq!(scalar(&e[2].value), ("null", false));
    assert_eq!(scalar(&e[3].value), ("", false));
    assert_eq!(e[4].value.kind, Kind::Null);
    assert_eq!(e[4].value.describe(), "nothing");
    assert_eq!(e[2].value.describe(), "`null`");
}

#[test]
fn empty_text_has_no_root() {
    assert!(parse("").unwrap().root.is_none());
    assert!(parse("# only a comment\n").unwrap().root.is_none());
}

#[test]
fn syntax_error_has_line() {
    let err = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
    assert!(err.line >= 2, "{err:?}");
    assert_eq!(err.cause, Cause::Syntax);
    assert_eq!(err.fix, SYNTAX_FIX);
    let err = parse("a: 1\n  b: 2\n").unwrap_err();
    assert_eq!(err.line, 2, "{err:?}");
    let err = parse("a: *nope\n").unwrap_err();
    assert_eq!(err.line, 1, "{err:?}");
    assert!(
        err.message.contains("alias") || err.message.contains("anchor"),
        "{err:?}"
    );
}

#[test]
fn a_key_must_be_a_scalar() {
    let err = parse("? [a, b]\n: c\n").unwrap_err();
    assert!(err.message.contains("plain scalar"), "{err:?}");
    assert_eq!(err.fix, "use plain words as keys");
}

#[test]
fn duplicate_keys_are_reported() {
    let parsed = parse("http:\n  addr: a\n  addr: b\n").unwrap();
    assert_eq!(parsed.problems.len(), 1);
    let p = &parsed.problems[0];
    assert_eq!((p.key.as_str(), p.line), ("http.addr", 3));
    assert!(p.message.contains("line 2"), "{p:?}");
    assert_eq!(
        p.cause,
        Cause::DuplicateKey {
            name: "addr".to_owned(),
            first_line: 2
        }
    );
    // The last value is kept, at the first key's line.
    let http = map(&map(parsed.root.as_ref().unwrap())[0].value).to_vec();
    assert_eq!(http.len(), 1);
    assert_eq!((http[0].loc.line, scalar(&http[0].value).0), (2, "b"));
}

#[test]
fn paths_of_problems_name_list_items() {
    let parsed = parse("rules:\n  - a: 1\n    a: 2\n").unwrap();
    assert_eq!(parsed.problems[0].key, "rules[0].a");
}

#[test]
fn strict_parsing_stops_at_the_first_problem() {
    let err = parse_with("a: 1\na: 2\nb: [\n", &strict()).unwrap_err();
    assert_eq!(err.line, 2, "{err:?}");
    assert!(matches!(err.cause, Cause::DuplicateKey { .. }), "{err:?}");
    let err = parse_with("a:\n  <<: [x]\n", &strict()).unwrap_err();
    assert_eq!((err.line, err.cause), (2, Cause::BadMerge));
    // Lenient parsing lists it and goes on.
    let parsed = parse("a:\n  <<: [x, y]\n  b: 1\n").unwrap();
    assert_eq!(parsed.problems.len(), 2);
    assert_eq!(parsed.problems[0].key, "a.<<");
}

#[test]
fn aliases_and_merges() {
    let text = "base: &b\n  a: 1\n  b: 2\nother:\n  <<: *b\n  b: 3\ncopy: *b\n";
    let root = root(text);
    let entries = map(&root);
    let other = map(&entries[1].value);
    assert_eq!(other.len(), 2);
    assert_eq!(other[0].key, "b");
    assert_eq!(scalar(&other[0].value).0, "3");
    assert_eq!(other[1].key, "a");
    assert_eq!(map(&entries[2].value).len(), 2);
    assert_eq!(entries[2].value.loc.line, 7);
}

#[test]
fn merging_a_list_of_maps_earlier_wins() {
    let text = "x: &x {a: 1, b: 1}\ny: &y {b: 2, c: 2}\nz:\n  <<: [*x, *y]\n";
    let root = root(text);
    let z = map(&map(&root)[2].value);
    let got: Vec<_> = z
        .iter()
        .map(|e| (e.key.as_str(), scalar(&e.value).0))
        .collect();
    assert_eq!(got, [("a", "1"), ("b", "1"), ("c", "2")]);
}

#[test]
fn alias_bomb_is_refused() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let err = parse(&text).unwrap_err();
    assert!(err.message.contains("too many"), "{err:?}");
}

#[test]
fn limits_are_options() {
    let small = Options {
        max_nodes: 3,
        ..Options::default()
    };
    assert!(parse_with("[a, b]\n", &small).is_ok());
    let err = parse_with("[a, b, c]\n", &small).unwrap_err();
    assert!(err.message.contains("too large"), "{err:?}");
    let shallow = Options {
        max_depth: 2,
        ..Options::default()
    };
    assert!(parse_with("[[a]]\n", &shallow).is_ok());
    let err = parse_with("[[[a]]]\n", &shallow).unwrap_err();
    assert!(err.message.contains("nested too deeply"), "{err:?}");
}

#[test]
fn tagged_str_is_not_plain() {
    let root = root("a: !!str true\n");
    assert_eq!(scalar(&map(&root)[0].value), ("true", false));
}

#[test]
fn two_documents_are_refused() {
    let err = parse("a: 1\n---\nb: 2\n").unwrap_err();
    assert!(err.message.contains("more than one"), "{err:?}");
    assert_eq!(err.line, 2, "{err:?}");
}

#[test]
fn origins_mark_a_whole_subtree() {
    let mut node = root("a: [1, {b: 2}]\n");
    let var: Arc<str> = Arc::from("REGISTRY_A");
    node.set_origin(&var);
    let a = &map(&node)[0];
    assert_eq!(a.loc.origin.as_deref(), Some("REGISTRY_A"));
    let inner = map(&seq(&a.value)[1]);
    assert_eq!(inner[0].loc.origin.as_deref(), Some("REGISTRY_A"));
    assert_eq!(inner[0].value.loc.origin.as_deref(), Some("REGISTRY_A"));
    assert_eq!(Loc::from_origin("--addr").origin.as_deref(), Some("--addr"));
}

#[test]
fn child_paths() {
    assert_eq!(child_path("", "http"), "http");
    assert_eq!(child_path("http", "addr"), "http.addr");
}
