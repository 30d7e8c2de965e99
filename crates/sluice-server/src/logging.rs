//! The log: `SLUICE_LOG` filters it (`info` unless set, e.g.
//! `info,sluice=debug`), `SLUICE_LOG_FORMAT` picks `text` (the default) or
//! `json` (one object per line). It goes to standard error, one line per
//! record: a message that lists several things joins them with `"; "`
//! ([`one_line`]), so line-based log shippers keep each record whole.

use std::fmt::Display;
use std::io::IsTerminal;

use anyhow::bail;
use tracing_subscriber::EnvFilter;

/// The environment variable holding the log filter.
pub const LOG_ENV: &str = "SLUICE_LOG";
/// The environment variable choosing the log format.
pub const LOG_FORMAT_ENV: &str = "SLUICE_LOG_FORMAT";

/// The levels a filter may name alone.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// What a valid filter looks like, for errors.
const FILTER_EXPECTED: &str = "a level (off, error, warn, info, debug or trace) or \
     comma-separated target=level directives, such as info or info,sluice_server=debug";

/// The log's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line.
    Json,
}

/// The filter `spec` (the value of [`LOG_ENV`]) names; blank means
/// `info`. Stricter than tracing's own parser, which takes a bare word
/// such as `verbose` for a target's name and so silences every record
/// without a word: a directive alone must be a level, and a target needs
/// `=level`.
///
/// ```
/// use sluice_server::logging::filter;
///
/// assert!(filter("debug").is_ok());
/// assert!(filter("info,sluice_server=debug").is_ok());
/// let e = filter("verbose").unwrap_err().to_string();
/// assert!(e.starts_with("environment variable SLUICE_LOG: invalid filter \"verbose\""), "{e}");
/// ```
pub fn filter(spec: &str) -> anyhow::Result<EnvFilter> {
    if spec.trim().is_empty() {
        return Ok(EnvFilter::new("info"));
    }
    let invalid = |why: String| {
        anyhow::anyhow!(
            "environment variable {LOG_ENV}: invalid filter {spec:?}: {why}; expected {FILTER_EXPECTED}"
        )
    };
    let is_level = |word: &str| LEVELS.contains(&word.trim().to_ascii_lowercase().as_str());
    for directive in spec.split(',').map(str::trim) {
        match directive.rsplit_once('=') {
            // `target=` would enable every level of the target.
            Some((_, level)) if !is_level(level) => {
                return Err(invalid(format!("{directive:?} does not end with a level")));
            }
            Some(_) => {}
            None if directive.contains('[') || is_level(directive) => {}
            None => {
                return Err(invalid(format!(
                    "{directive:?} is not a level (to filter a target, write {directive}=debug)"
                )));
            }
        }
    }
    EnvFilter::try_new(spec).map_err(|e| invalid(e.to_string()))
}

/// The format `value` (the value of [`LOG_FORMAT_ENV`]) names; blank
/// means text.
pub fn format(value: &str) -> anyhow::Result<Format> {
    match value.trim() {
        "" | "text" => Ok(Format::Text),
        "json" => Ok(Format::Json),
        other => bail!(
            "environment variable {LOG_FORMAT_ENV}: invalid format {other:?}; expected text or json"
        ),
    }
}

/// Starts logging as the environment says; an invalid filter or format is
/// an error that names the variable, its value and what was expected.
pub fn init() -> anyhow::Result<()> {
    let filter = filter(&std::env::var(LOG_ENV).unwrap_or_default())?;
    let format = format(&std::env::var(LOG_FORMAT_ENV).unwrap_or_default())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        Format::Text => builder.try_init(),
        Format::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

/// `text` on one line: its lines joined with `"; "` (blank ones dropped),
/// for a record that lists several things (every error of a refused
/// configuration).
///
/// ```
/// use sluice_server::logging::one_line;
///
/// assert_eq!(one_line("a.yaml:1: bad\na.yaml:2: worse\n"), "a.yaml:1: bad; a.yaml:2: worse");
/// ```
pub fn one_line(text: impl Display) -> String {
    let text = text.to_string();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_14_a_word_that_is_not_a_level_is_refused() {
        for bad in ["verbose", "info,verbose", "sluice", "loud=", "sluice=loud"] {
            let e = filter(bad).expect_err(bad).to_string();
            assert!(e.contains(&format!("invalid filter {bad:?}")), "{e}");
            assert!(e.contains("expected a level"), "{e}");
        }
        for good in [
            "",
            "  ",
            "INFO",
            "warn",
            "off",
            "info,sluice=debug",
            "sluice_server=trace",
            "[span]=debug",
        ] {
            assert!(filter(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn issue_14_the_format_is_text_or_json() {
        assert_eq!(format("").unwrap(), Format::Text);
        assert_eq!(format("json").unwrap(), Format::Json);
        let e = format("yaml").unwrap_err().to_string();
        assert_eq!(
            e,
            "environment variable SLUICE_LOG_FORMAT: invalid format \"yaml\"; expected text or json"
        );
    }
}
