//! The checks of the fuzz targets in `fuzz/` (issue 12), one function per
//! target: each feeds the bytes a fuzzer made to the parser it names and
//! panics when a property fails. The targets call them, and so does
//! `tests/fuzz_corpus.rs`, which replays the kept corpus on stable with
//! `cargo test`: one definition, so the two cannot drift.
//!
//! Not an API: hidden from the docs, and free to change with the fuzz
//! targets. Each property is one an attacker would like to break, beyond
//! "does not panic": an error that says nothing or nowhere, an answer that
//! repeats a whole hostile body, a value the parser invented.

// Panicking on a broken property is this module's whole job.
#![allow(clippy::panic)]

use std::path::Path;

use crate::config::envoy::{EnvoyConfig, Level};
use crate::config::{Config, ConfigError, ConfigErrors, Origin, parse_duration};
use crate::http::check::{CheckRequest, MAX_COST, MAX_POLICIES};
use crate::http::error::MAX_ECHO;

/// The file name the configuration target's errors must name.
pub const CONFIG_FILE: &str = "fuzz.yaml";

/// The longest message a refused request body may get: the fixed words
/// around one [`echo`](crate::http::error::echo) of the parser's message
/// and the position it names. Far below the 64 KiB a body may be.
pub const MAX_CHECK_ERROR: usize = MAX_ECHO + 128;

/// `data` as a configuration file ([`Config::from_text`]; never read from
/// disk). Text that is not UTF-8 is skipped: [`Config::load`] refuses it
/// before parsing. Properties: a refused file has at least one error;
/// every error names [`CONFIG_FILE`] at a line of the text
/// (or just past its end), and displays starting with where it is; an
/// accepted file has at least one policy, with distinct non-empty names.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_text(text, Path::new(CONFIG_FILE)) {
        Ok(config) => {
            assert!(!config.policies.is_empty(), "accepted with no policy");
            let mut names: Vec<&str> = config.policies.iter().map(|p| p.name()).collect();
            assert!(names.iter().all(|n| !n.is_empty()), "an empty policy name");
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(names.len(), before, "a policy name accepted twice");
        }
        Err(errors) => located(text, &errors),
    }
}

/// A refused file's errors: at least one; each names [`CONFIG_FILE`] at a
/// line of `text` (or just past its end), says something, and displays
/// starting with where it is.
fn located(text: &str, ConfigErrors(errors): &ConfigErrors) {
    assert!(!errors.is_empty(), "refused with no error");
    // YAML breaks lines at `\r\n`, `\n` and a lone `\r` (the fuzzer found
    // a file of old Mac line ends); an error may point at the line after
    // the last break, or just past it (the end of input).
    let breaks = text.replace("\r\n", "\n").matches(['\n', '\r']).count();
    let last_line = breaks + 2;
    for error in errors {
        let ConfigError {
            origin: Origin::File { file, line },
            ..
        } = error
        else {
            panic!("an error from a file names no file: {error}");
        };
        assert_eq!(file, CONFIG_FILE, "{error}");
        assert!(
            (1..=last_line).contains(line),
            "line out of the text: {error}"
        );
        let shown = error.to_string();
        assert!(
            shown.starts_with(&format!("{CONFIG_FILE}:{line}: ")),
            "{shown}"
        );
        assert!(
            !error.message.is_empty(),
            "an error that says nothing: {error}"
        );
    }
}

/// `data` as an envoyproxy/ratelimit configuration file
/// ([`EnvoyConfig::add`], named [`CONFIG_FILE`]). Properties: a refused
/// file's errors are located as [`config`]'s are; an accepted file has
/// its domain, with non-empty keys and composite keys unique in each
/// level, and is refused when added again without merging; every
/// `rate_limit` reached by exact values (no wildcard on the way) is the
/// one [`EnvoyConfig::find`] answers for those values, counted on them.
pub fn envoy_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut config = EnvoyConfig::default();
    if let Err(errors) = config.add(text, CONFIG_FILE, false) {
        located(text, &errors);
        return;
    }
    assert_eq!(config.domains.len(), 1, "one file, one domain");
    let mut again = config.clone();
    match again.add(text, CONFIG_FILE, false) {
        Ok(()) => panic!("a domain loaded twice without merging"),
        Err(errors) => located(text, &errors),
    }
    for (domain, level) in &config.domains {
        let mut path = Vec::new();
        exact_paths(&config, domain, level, &mut path);
    }
}

/// Walks `level` (reached by the exact `path`), checking each level's keys
/// and that [`EnvoyConfig::find`] answers every exactly reached limit.
fn exact_paths<'a>(
    config: &'a EnvoyConfig,
    domain: &str,
    level: &'a Level,
    path: &mut Vec<(&'a str, &'a str)>,
) {
    let mut composites: Vec<&str> = level
        .descriptors
        .iter()
        .map(|d| d.composite.as_str())
        .collect();
    composites.sort_unstable();
    let before = composites.len();
    composites.dedup();
    assert_eq!(composites.len(), before, "a composite key twice in a level");
    for descriptor in &level.descriptors {
        assert!(!descriptor.key.is_empty(), "an empty key");
        let Some(value) = descriptor.value.as_deref() else {
            continue;
        };
        if value.contains('*') {
            continue;
        }
        path.push((descriptor.key.as_str(), value));
        if let Some(limit) = &descriptor.rate_limit {
            let found = config.find(domain, path);
            let found = found.unwrap_or_else(|| panic!("no rule for {path:?}"));
            assert!(
                std::ptr::eq(found.descriptor, descriptor),
                "{path:?} met {:?}, not {:?}",
                found.descriptor.full_key,
                descriptor.full_key
            );
            assert_eq!(found.limit, limit);
            assert_eq!(&found.counter, path, "counted on other values");
        }
        exact_paths(config, domain, &descriptor.nested, path);
        path.pop();
    }
}

/// `data` as a duration ([`parse_duration`]). Properties: an accepted
/// duration written back in the same grammar ([`sluice::duration::display`],
/// as every message shows durations) parses to the same value; a bare
/// number is refused (it needs a unit); a refusal names the text given and
/// says what a duration looks like.
pub fn duration(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_duration(text) {
        Ok(d) => {
            assert!(
                !text.trim().chars().all(|c| c.is_ascii_digit()),
                "a bare number {text:?} was accepted as {d:?}"
            );
            let written = sluice::duration::display(d).to_string();
            assert_eq!(
                parse_duration(&written),
                Ok(d),
                "{text:?} read as {d:?}, written back as {written:?}"
            );
        }
        Err(e) => {
            let message = e.to_string();
            let expected = format!("{text:?} is not a duration: {}", sluice::duration::EXPECTED);
            assert!(message.starts_with(&expected), "{message:?}");
        }
    }
}

/// `data` as a `POST /v1/check` body ([`CheckRequest::decode`]).
/// Properties: an accepted request has 1 to [`MAX_POLICIES`] non-empty
/// policy names and a cost of 1 to [`MAX_COST`], and the same request
/// written back as JSON decodes to the same request; a refusal is a 400
/// whose message is at most [`MAX_CHECK_ERROR`] bytes, whatever the body.
pub fn check_request(data: &[u8]) {
    match CheckRequest::decode(data) {
        Ok(request) => {
            assert!((1..=MAX_POLICIES).contains(&request.policies.len()));
            assert!(request.policies.iter().all(|p| !p.is_empty()));
            assert!((1..=MAX_COST).contains(&request.cost));
            let names = if request.multi {
                serde_json::json!({ "policies": request.policies })
            } else {
                serde_json::json!({ "policy": request.policies[0] })
            };
            let mut again = names;
            again["key"] = serde_json::json!(request.key);
            again["cost"] = serde_json::json!(request.cost);
            let again = again.to_string();
            match CheckRequest::decode(again.as_bytes()) {
                Ok(decoded) => assert_eq!(decoded, request, "written back as {again}"),
                Err(e) => panic!("written back as {again}, refused: {}", e.message()),
            }
        }
        Err(e) => {
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
            assert!(
                e.message().len() <= MAX_CHECK_ERROR,
                "a {}-byte message for a {}-byte body: {:?}",
                e.message().len(),
                data.len(),
                e.message()
            );
        }
    }
}
