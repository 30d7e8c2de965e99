//! Durations as people write them, and as Sluice writes them back: one
//! grammar for the configuration file, the command line, the environment
//! and every message that shows a duration.
//!
//! A duration is one or more whole numbers, each followed by its unit,
//! largest unit first and each unit at most once, with nothing between:
//!
//! | unit | meaning      |
//! |------|--------------|
//! | `d`  | days (24 h)  |
//! | `h`  | hours        |
//! | `m`  | minutes      |
//! | `s`  | seconds      |
//! | `ms` | milliseconds |
//! | `us` | microseconds |
//!
//! So `250ms`, `90s`, `1h30m` and `1d12h` are durations; `1.5s` (a
//! fraction), `60` (no unit), `1M` (units are lower case: `M` is neither
//! minutes nor months), `1w`, `2 days` and `30m1h` (smallest first) are
//! not. There are no weeks, months or years: a month has no fixed length.
//!
//! ```
//! use std::time::Duration;
//! use sluice::duration::{display, parse};
//!
//! assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
//! assert_eq!(display(Duration::from_secs(5400)).to_string(), "1h30m");
//! assert_eq!(display(Duration::ZERO).to_string(), "0s");
//! let error = parse("1M").unwrap_err().to_string();
//! assert!(error.starts_with("\"1M\" is not a duration: write a whole number followed by"));
//! ```

use std::fmt;
use std::time::Duration;

/// The units, largest first: name and length in microseconds.
const UNITS: [(&str, u64); 6] = [
    ("d", 86_400_000_000),
    ("h", 3_600_000_000),
    ("m", 60_000_000),
    ("s", 1_000_000),
    ("ms", 1_000),
    ("us", 1),
];

/// What a duration looks like, for errors that must say it (the
/// configuration's, a flag's).
pub const EXPECTED: &str =
    "write a whole number followed by ms, s, m, h or d (or us), e.g. 250ms or 1h30m";

/// Text that is not a duration: says what was given and what is accepted.
///
/// Displays as `"1M" is not a duration: write a whole number followed by
/// ms, s, m, h or d (or us), e.g. 250ms or 1h30m`, with a hint at the
/// mistake when there is a likely one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration: {EXPECTED}{hint}")]
pub struct ParseDurationError {
    text: String,
    hint: &'static str,
}

impl ParseDurationError {
    fn new(text: &str, hint: &'static str) -> ParseDurationError {
        ParseDurationError {
            text: text.to_owned(),
            hint,
        }
    }

    /// The text that was given.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Reads `text` (surrounding blanks ignored) as a duration of the grammar
/// above.
pub fn parse(text: &str) -> Result<Duration, ParseDurationError> {
    let fail = |hint| Err(ParseDurationError::new(text, hint));
    let mut rest = text.trim();
    if rest.is_empty() {
        return fail("");
    }
    let mut total: u64 = 0;
    // The index in UNITS below which the next unit must be.
    let mut next = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        if number.is_empty() {
            return fail("");
        }
        if unit.is_empty() {
            return fail("; a number needs a unit");
        }
        let Some(at) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return fail(match unit {
                "M" => {
                    "; M is not a unit: m is minutes, and months have no fixed length (write 30d)"
                }
                "w" | "y" => "; there are no weeks or years: write days, e.g. 7d",
                _ => "",
            });
        };
        if at < next {
            return fail("; write the units largest first, each once, e.g. 1h30m");
        }
        next = at + 1;
        let value = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(UNITS[at].1))
            .and_then(|us| total.checked_add(us));
        match value {
            Some(sum) => total = sum,
            None => return fail("; it is too long"),
        }
        rest = tail;
    }
    Ok(Duration::from_micros(total))
}

/// `duration` written in the grammar above, as [`parse`] reads it: the
/// largest units first, zero parts left out (`1h30m`, `250ms`, `0s`).
///
/// A part below a microsecond, which no written duration has (a library
/// caller's `Duration::from_nanos`), is shown in `ns`, so that a message
/// about it shows it.
pub fn display(duration: Duration) -> Display {
    Display(duration)
}

/// A duration that displays in the grammar of this module; made by
/// [`display`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Display(Duration);

impl fmt::Display for Display {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_zero() {
            return f.write_str("0s");
        }
        let mut rest = self.0.as_micros();
        for (name, length) in UNITS {
            let length = u128::from(length);
            if rest >= length {
                write!(f, "{}{name}", rest / length)?;
                rest %= length;
            }
        }
        let nanos = self.0.subsec_nanos() % 1_000;
        if nanos > 0 {
            write!(f, "{nanos}ns")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn refused(text: &str) -> String {
        match parse(text) {
            Ok(d) => panic!("{text:?} was read as {d:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn whole_numbers_with_units_largest_first() {
        let ok = [
            ("0s", 0),
            ("250ms", 250_000),
            ("90s", 90_000_000),
            ("1m", 60_000_000),
            ("1h30m", 5_400_000_000),
            ("1d12h", 129_600_000_000),
            ("1s500ms", 1_500_000),
            ("1500us", 1_500),
            (" 10s\n", 10_000_000),
        ];
        for (text, micros) in ok {
            assert_eq!(parse(text), Ok(Duration::from_micros(micros)), "{text}");
        }
    }

    #[test]
    fn everything_else_is_refused_and_says_what_it_got() {
        for text in [
            "",
            "1.5s",
            "1 s",
            "2 days",
            "10 minutes",
            "1S",
            "-1s",
            "1s 1ms",
            "s",
            "1w",
            "1y",
            "1ns",
            "30m1h",
            "1m1m",
            "1µs",
        ] {
            let message = refused(text);
            assert!(
                message.starts_with(&format!("{text:?} is not a duration: {EXPECTED}")),
                "{message}"
            );
        }
        assert_eq!(
            refused("1M"),
            "\"1M\" is not a duration: write a whole number followed by ms, s, m, h or d (or us), \
             e.g. 250ms or 1h30m; M is not a unit: m is minutes, and months have no fixed length (write 30d)"
        );
        assert!(refused("60").ends_with("; a number needs a unit"));
        assert!(refused("30m1h").ends_with("largest first, each once, e.g. 1h30m"));
        assert!(refused("99999999999999999999d").ends_with("; it is too long"));
        assert!(refused("1w").ends_with("write days, e.g. 7d"));
    }

    #[test]
    fn display_writes_the_grammar() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_secs(5400), "1h30m"),
            (Duration::from_secs(366 * 86_400), "366d"),
            (Duration::from_micros(1_500), "1ms500us"),
            (Duration::from_nanos(1_500), "1us500ns"),
        ];
        for (duration, text) in cases {
            assert_eq!(display(duration).to_string(), text);
        }
    }

    proptest! {
        /// Every whole-microsecond duration is written back as text that
        /// reads as the same duration.
        #[test]
        fn display_then_parse_is_the_identity(micros in 0..u64::MAX) {
            let duration = Duration::from_micros(micros);
            let written = display(duration).to_string();
            prop_assert_eq!(parse(&written), Ok(duration), "{}", written);
        }

        /// Whatever the text, an answer and never a panic; an accepted
        /// text is a duration that displays as the canonical form of it.
        #[test]
        fn any_text_is_read_or_refused(text in "[0-9dhmsuM ]{0,12}") {
            if let Ok(duration) = parse(&text) {
                let again = display(duration).to_string();
                prop_assert_eq!(parse(&again), Ok(duration));
            }
        }
    }
}
