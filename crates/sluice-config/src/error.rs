//! Configuration errors that say where they are and what was expected.

use std::fmt;

/// Where a configuration value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A line of a configuration file.
    File {
        /// The file's path as the user gave it.
        file: String,
        /// The line, counted from 1.
        line: usize,
    },
    /// A file as a whole, which could not be read: no line of it is at
    /// fault, and the message names it (`cannot read sluice.yaml: no such
    /// file`).
    WholeFile {
        /// The file's path as the user gave it.
        file: String,
    },
    /// An environment variable.
    Env(&'static str),
    /// A command-line flag, such as `--store`.
    Flag(&'static str),
}

/// One thing wrong with the configuration.
///
/// Displays as `sluice.yaml:7: policies.api.limit: must be a positive
/// integer, got -5`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the faulty value is.
    pub origin: Origin,
    /// The dotted path of the field, such as `policies.api.limit`; empty
    /// when the error is not about one field (a YAML syntax error).
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File { file, line } => write!(f, "{file}:{line}: ")?,
            Origin::WholeFile { .. } => {}
            Origin::Env(var) => write!(f, "environment variable {var}: ")?,
            Origin::Flag(flag) => write!(f, "{flag}: ")?,
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Every error found in a configuration, in the order of the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        ConfigErrors(vec![error])
    }
}
