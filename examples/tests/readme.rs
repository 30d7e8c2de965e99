//! The README's "As tower or axum middleware" section cannot rot: its
//! example is `tower_middleware.rs` (which this package builds), verbatim,
//! and its `[dependencies]` block names exactly the crates the example uses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

const README: &str = include_str!("../../README.md");
const EXAMPLE: &str = include_str!("../tower_middleware.rs");
const HEADING: &str = "## As tower or axum middleware\n";

/// The README's middleware section: from its heading to the next one.
fn section() -> &'static str {
    let start = README
        .find(HEADING)
        .unwrap_or_else(|| panic!("no {HEADING:?} in README.md"));
    let rest = &README[start + HEADING.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The text of the section's first fenced block in `lang`.
fn block(lang: &str) -> &'static str {
    let fence = format!("```{lang}\n");
    let section = section();
    let start = section
        .find(&fence)
        .unwrap_or_else(|| panic!("no {fence:?} block in the README's middleware section"))
        + fence.len();
    let rest = &section[start..];
    let end = rest
        .find("\n```\n")
        .unwrap_or_else(|| panic!("the README's {lang} block is not closed"));
    &rest[..=end]
}

/// `tower_middleware.rs` without its `//!` header and the blank line after it.
fn example_code() -> &'static str {
    let mut rest = EXAMPLE;
    while rest.starts_with("//!") {
        rest = rest.split_once('\n').map_or("", |(_, after)| after);
    }
    rest.strip_prefix('\n')
        .expect("a blank line after the example's header")
}

#[test]
fn the_readme_example_is_the_example_binary_verbatim() {
    let readme = block("rust");
    let example = example_code();
    if readme != example {
        let line = readme
            .lines()
            .zip(example.lines())
            .position(|(r, e)| r != e)
            .unwrap_or_else(|| readme.lines().count().min(example.lines().count()));
        panic!(
            "the README's middleware example and examples/tower_middleware.rs differ \
             from line {} of the example on: copy one into the other.\n\
             README:  {:?}\nexample: {:?}",
            line + 1,
            readme.lines().nth(line),
            example.lines().nth(line),
        );
    }
}

#[test]
fn the_readme_dependencies_are_the_crates_the_example_uses() {
    let listed: BTreeSet<String> = block("toml")
        .lines()
        .filter_map(|line| line.split_once(" = "))
        .map(|(name, _)| name.trim().to_owned())
        .collect();
    // The crates the code names: the first segment of every `use`, and of
    // every other path that starts a word (`tokio::net::…`, `#[tokio::main]`),
    // but the standard library's and the types' (`Duration::from_secs`).
    let mut used = BTreeSet::new();
    for line in example_code().lines() {
        let line = line.trim_start();
        let roots: Vec<&str> = match line.strip_prefix("use ") {
            Some(path) => path.split("::").take(1).collect(),
            None => line
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .filter_map(|word| word.split_once("::"))
                // Not a turbofish (`into_make_service::<..>`).
                .filter(|(_, rest)| !rest.is_empty())
                .map(|(root, _)| root)
                .collect(),
        };
        for root in roots {
            if root.starts_with(|c: char| c.is_ascii_lowercase())
                && !["std", "core", "alloc", "crate", "self", "super"].contains(&root)
            {
                used.insert(root.replace('_', "-"));
            }
        }
    }
    assert_eq!(
        used,
        BTreeSet::from(["axum", "sluice", "sluice-tower", "tokio"].map(String::from)),
        "the crates the example names"
    );
    assert_eq!(listed, used, "the README's [dependencies] block");
}
