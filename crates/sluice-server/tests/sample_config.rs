//! `examples/sluice.yaml`, the commented sample the README points to, loads
//! with the real loader and shows every field the file accepts, so it
//! cannot fall behind the schema.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use marked_yaml::Node;
use sluice_server::config::{Config, StoreSpec, fields};

fn sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/sluice.yaml")
}

#[test]
fn the_sample_configuration_loads() {
    let config = Config::load(&sample()).unwrap_or_else(|e| panic!("examples/sluice.yaml: {e}"));
    assert_eq!(config.store, StoreSpec::Memory);
    let names: Vec<&str> = config.policies.iter().map(|p| p.name()).collect();
    assert_eq!(names, ["api", "login", "search"]);
    assert_eq!(config.grpc.listen, None, "the sample opens no gRPC port");
}

/// The sample with its commented-out fields (`# tls:`, `  #   ca: …`)
/// uncommented: a comment line whose text starts with `name:` is a field.
fn uncommented(text: &str) -> String {
    let field = |rest: &str| {
        let rest = rest.trim_start();
        rest.split_once(':').is_some_and(|(name, after)| {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && (after.is_empty() || after.starts_with(' '))
        })
    };
    text.lines()
        .map(|line| {
            let indent = line.len() - line.trim_start().len();
            match line.trim_start().strip_prefix("# ") {
                Some(rest) if field(rest) => format!("{}{rest}", &line[..indent]),
                _ => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every field path in `node`, written as [`fields`] writes them: `*` for
/// the names under `policies` and `overrides`, `[]` for a list's elements.
fn paths(node: &Node, at: &str, out: &mut BTreeSet<String>) {
    match node {
        Node::Mapping(map) => {
            for (key, value) in map.iter() {
                let named = at.ends_with("policies") || at.ends_with("overrides");
                let name = if named { "*" } else { key.as_str() };
                let path = if at.is_empty() {
                    name.to_owned()
                } else {
                    format!("{at}.{name}")
                };
                out.insert(path.clone());
                paths(value, &path, out);
            }
        }
        Node::Sequence(items) => {
            for item in items.iter() {
                paths(item, &format!("{at}[]"), out);
            }
        }
        Node::Scalar(_) => {}
    }
}

#[test]
fn the_sample_configuration_shows_every_field() {
    let text = std::fs::read_to_string(sample()).unwrap();
    let root = marked_yaml::parse_yaml(0, uncommented(&text)).unwrap();
    let mut shown = BTreeSet::new();
    paths(&root, "", &mut shown);
    let accepted: BTreeSet<String> = fields().into_iter().collect();
    let missing: Vec<_> = accepted.difference(&shown).collect();
    assert!(
        missing.is_empty(),
        "examples/sluice.yaml does not show {missing:?}"
    );
    let unknown: Vec<_> = shown.difference(&accepted).collect();
    assert!(
        unknown.is_empty(),
        "examples/sluice.yaml shows {unknown:?}, which the schema does not accept"
    );
}

#[test]
fn uncommenting_keeps_prose_comments() {
    let text = "# Where: prose\nredis:\n  # tls:  # why\n  #   ca: x.pem\n  # rediss://host\n";
    assert_eq!(
        uncommented(text),
        "# Where: prose\nredis:\n  tls:  # why\n    ca: x.pem\n  # rediss://host"
    );
}
