//! Reading a configuration file whole, with an error that names it.

use std::path::Path;

use crate::error::{ConfigError, ConfigErrors, Origin};

/// The text of the configuration file at `path`.
pub fn read_file(path: &Path) -> Result<String, ConfigErrors> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigError {
            origin: Origin::File {
                file: path.display().to_string(),
                line: 1,
            },
            path: String::new(),
            message: format!("cannot read the file: {e}"),
        }
        .into()
    })
}
