//! A span-aware walk over YAML that knows no schema: it reads mappings with
//! a set of allowed fields, lists, scalars, positive integers, durations and
//! booleans, and collects every error with its file, line and field path
//! instead of stopping at the first.
//!
//! The text is read into a tree whose nodes remember their position
//! (`marked-yaml`); scalars stay strings until a field asks for a number, a
//! duration or a boolean, so each conversion error can name what it got.
//! A schema (Sluice's own in [`crate::schema`], or another format) walks the
//! tree with a [`Walker`]: each read returns `None` when the value is
//! invalid and has already been reported, so the schema carries on and
//! reports the next error too; [`Walker::finish`] then joins them all.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{LoaderOptions, Node, Span};

use crate::error::{ConfigError, ConfigErrors, Origin};

/// Reads `text`, the content of `file`, into a tree whose top level is a
/// mapping; `top` says what the file must be (`a YAML mapping such as
/// ...`). An empty file, or one of comments only, is an empty mapping.
/// Duplicate keys, anchors and tags are refused.
pub fn load(text: &str, file: &str, top: &str) -> Result<Node, ConfigErrors> {
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .toplevel_mapping();
    match marked_yaml::parse_yaml_with_options(0, text, options) {
        Ok(mut root) => {
            place_empty_values(&mut root);
            Ok(root)
        }
        Err(_)
            if text
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#')) =>
        {
            Ok(Node::Mapping(MarkedMappingNode::new_empty(
                Span::new_blank(),
            )))
        }
        Err(e) => Err(load_error(&e, file, top).into()),
    }
}

/// Gives every field written with no value (`limit:`) its key's span: the
/// parser places such an empty value where the next token starts, often on
/// the next line, and an error about it should name the field's own line.
fn place_empty_values(node: &mut Node) {
    match node {
        Node::Scalar(_) => {}
        Node::Sequence(items) => items.iter_mut().for_each(place_empty_values),
        Node::Mapping(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    Node::Scalar(s) if s.as_str().is_empty() => *s.span_mut() = *key.span(),
                    value => place_empty_values(value),
                }
            }
        }
    }
}

fn load_error(error: &marked_yaml::LoadError, file: &str, top: &str) -> ConfigError {
    use marked_yaml::LoadError as E;
    let (marker, message) = match error {
        E::TopLevelMustBeMapping(m) => (Some(*m), format!("the file must be {top}")),
        E::TopLevelMustBeSequence(m) => (Some(*m), "the file must be a YAML mapping".to_owned()),
        E::UnexpectedAnchor(m) => (
            Some(*m),
            "YAML anchors and aliases are not supported".to_owned(),
        ),
        E::MappingKeyMustBeScalar(m) => (Some(*m), "mapping keys must be plain strings".to_owned()),
        E::UnexpectedTag(m) => (Some(*m), "YAML tags are not supported".to_owned()),
        E::ScanError(m, e) => (Some(*m), format!("invalid YAML: {}", e.info())),
        E::DuplicateKey(d) => (
            d.key.span().start().copied(),
            format!(
                "duplicate key {:?} (first defined on line {})",
                d.key.as_str(),
                d.prev_key.span().start().map_or(0, |m| m.line())
            ),
        ),
    };
    ConfigError {
        origin: Origin::File {
            file: file.to_owned(),
            line: marker.map_or(1, |m| m.line()),
        },
        path: String::new(),
        message,
    }
}

/// Walks a loaded tree for one file, collecting every error it meets.
pub struct Walker<'a> {
    file: &'a str,
    errors: Vec<ConfigError>,
}

impl<'a> Walker<'a> {
    /// A walker whose errors name `file`.
    pub fn new(file: &'a str) -> Walker<'a> {
        Walker {
            file,
            errors: Vec::new(),
        }
    }

    /// The file the errors name (the configuration file's path).
    pub fn file(&self) -> &'a str {
        self.file
    }

    /// `value` when nothing was reported, else every error in the order
    /// they were found.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.errors))
        }
    }

    /// Reports `message` about the field at `path`, on the line where
    /// `span` starts (line 1 for a blank span).
    pub fn error(&mut self, span: &Span, path: &str, message: impl Into<String>) {
        let line = span.start().map_or(1, |m| m.line());
        self.errors.push(ConfigError {
            origin: Origin::File {
                file: self.file.to_owned(),
                line,
            },
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// The node as a mapping; every key not among `fields` is reported as
    /// an unknown field (and the mapping is still returned, so that its
    /// known fields are checked too).
    pub fn mapping<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        fields: &[&str],
    ) -> Option<&'n MarkedMappingNode> {
        let map = self.shaped(node.as_mapping(), node, path, "a mapping")?;
        for key in map.keys() {
            if !fields.contains(&key.as_str()) {
                let at = join(path, key.as_str());
                self.error(
                    key.span(),
                    &at,
                    format!("unknown field; expected one of {}", fields.join(", ")),
                );
            }
        }
        Some(map)
    }

    /// The node as a list; `expected` describes it (`a list of limits`).
    pub fn sequence<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        expected: &str,
    ) -> Option<&'n MarkedSequenceNode> {
        self.shaped(node.as_sequence(), node, path, expected)
    }

    /// The node as a scalar; `expected` describes it (`a key prefix`).
    pub fn scalar<'n>(
        &mut self,
        node: &'n Node,
        path: &str,
        expected: &str,
    ) -> Option<&'n MarkedScalarNode> {
        self.shaped(node.as_scalar(), node, path, expected)
    }

    /// `found`, the node seen as the shape it must have; when it is not,
    /// an error saying what was `expected` and what the node is.
    fn shaped<T>(
        &mut self,
        found: Option<T>,
        node: &Node,
        path: &str,
        expected: &str,
    ) -> Option<T> {
        if found.is_none() {
            self.error(
                node.span(),
                path,
                format!("must be {expected}, got {}", describe(node)),
            );
        }
        found
    }

    /// The scalar parsed as a `T`; a parse error is reported as `T::Err`
    /// displays it.
    pub fn parsed<T>(&mut self, node: &Node, path: &str, expected: &str) -> Option<T>
    where
        T: FromStr,
        T::Err: Display,
    {
        let s = self.scalar(node, path, expected)?;
        match s.as_str().parse::<T>() {
            Ok(value) => Some(value),
            Err(e) => {
                self.error(s.span(), path, e.to_string());
                None
            }
        }
    }

    /// A whole number greater than zero.
    pub fn positive(&mut self, node: &Node, path: &str) -> Option<u64> {
        let s = self.scalar(node, path, "a positive integer")?;
        match s.as_str().parse::<u64>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                self.error(
                    s.span(),
                    path,
                    format!("must be a positive integer, got {}", s.as_str()),
                );
                None
            }
        }
    }

    /// A duration in the one grammar of [`sluice::duration`]: `250ms`,
    /// `1h30m`.
    pub fn duration(&mut self, node: &Node, path: &str) -> Option<Duration> {
        let s = self.scalar(node, path, "a duration such as 250ms or 1h30m")?;
        match sluice::duration::parse(s.as_str()) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(s.span(), path, e.to_string());
                None
            }
        }
    }

    /// `true` or `false`, spelt exactly so (YAML 1.1's `yes` and `on` are
    /// refused rather than guessed).
    pub fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        let s = self.scalar(node, path, "true or false")?;
        match s.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            other => {
                self.error(
                    s.span(),
                    path,
                    format!("must be true or false, got {other}"),
                );
                None
            }
        }
    }
}

/// The path of `field` inside `path`: `policies.api`.
pub fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// The path of the `index`th element (from 0) of the list at `path`:
/// `policies.api.limits[1]`.
pub fn index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// What a node is, for an error that says what it got instead.
pub fn describe(node: &Node) -> String {
    match node {
        Node::Scalar(s) if s.as_str().is_empty() => "nothing".to_owned(),
        Node::Scalar(s) => format!("{:?}", s.as_str()),
        Node::Mapping(_) => "a mapping".to_owned(),
        Node::Sequence(_) => "a list".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks `text` (a mapping) with `read`, which gets each top-level
    /// value and its key; answers the errors as displayed.
    fn walk(text: &str, read: impl Fn(&mut Walker<'_>, &Node, &str)) -> Vec<String> {
        let root = load(text, "w.yaml", "a mapping").unwrap();
        let mut walker = Walker::new("w.yaml");
        for (key, node) in root.as_mapping().unwrap().iter() {
            read(&mut walker, node, key.as_str());
        }
        match walker.finish(()) {
            Ok(()) => Vec::new(),
            Err(ConfigErrors(errors)) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn values_convert_or_say_what_they_got() {
        let text = "a: 3\nb: 0\nc: 90s\nd: 7\ne: true\nf: yes\ng: [1]\nh: 12\n";
        let got = walk(text, |w, node, key| match key {
            "a" => assert_eq!(w.positive(node, key), Some(3)),
            "b" => assert_eq!(w.positive(node, key), None),
            "c" => assert_eq!(w.duration(node, key), Some(Duration::from_secs(90))),
            "d" => assert_eq!(w.duration(node, key), None),
            "e" => assert_eq!(w.boolean(node, key), Some(true)),
            "f" => assert_eq!(w.boolean(node, key), None),
            "g" => assert_eq!(w.positive(node, key), None),
            "h" => assert_eq!(w.parsed::<u8>(node, key, "a byte"), Some(12)),
            _ => unreachable!(),
        });
        assert_eq!(
            got,
            [
                "w.yaml:2: b: must be a positive integer, got 0",
                "w.yaml:4: d: \"7\" is not a duration: write a whole number followed by ms, s, m, h or d (or us), e.g. 250ms or 1h30m; a number needs a unit",
                "w.yaml:6: f: must be true or false, got yes",
                "w.yaml:7: g: must be a positive integer, got a list",
            ]
        );
    }

    #[test]
    fn mappings_report_every_unknown_field_and_lists_index_their_paths() {
        let text = "m:\n  x: 1\n  y: 2\n  z: 3\nl:\n  - 1\n  - nope\n";
        let got = walk(text, |w, node, key| match key {
            "m" => assert!(w.mapping(node, key, &["x"]).is_some()),
            "l" => {
                let list = w.sequence(node, key, "a list of numbers").unwrap();
                for (i, item) in list.iter().enumerate() {
                    w.positive(item, &index(key, i));
                }
                assert!(w.mapping(node, key, &[]).is_none());
            }
            _ => unreachable!(),
        });
        assert_eq!(
            got,
            [
                "w.yaml:3: m.y: unknown field; expected one of x",
                "w.yaml:4: m.z: unknown field; expected one of x",
                "w.yaml:7: l[1]: must be a positive integer, got nope",
                "w.yaml:6: l: must be a mapping, got a list",
            ]
        );
    }

    #[test]
    fn loading_refuses_what_it_cannot_place() {
        let message = |text: &str| {
            load(text, "w.yaml", "a mapping of things")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            message("- a\n"),
            "w.yaml:1: the file must be a mapping of things"
        );
        assert!(message("a: &x 1\nb: *x\n").contains("anchors"));
        assert_eq!(
            message("a: 1\nb: 2\na: 3\n"),
            "w.yaml:3: duplicate key \"a\" (first defined on line 1)"
        );
        let root = load("a:\n  b:\n  c: 1\n", "w.yaml", "a mapping").unwrap();
        let b = root.as_mapping().unwrap().get_node("a").unwrap();
        let b = b.as_mapping().unwrap().get_node("b").unwrap();
        let line = b.span().start().map(|m| m.line());
        assert_eq!(line, Some(2), "a field with no value is on its own line");
        let empty = load("# only a comment\n\n", "w.yaml", "a mapping").unwrap();
        assert!(empty.as_mapping().is_some_and(|m| m.is_empty()));
    }
}
