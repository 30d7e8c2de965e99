//! Reading the files a configuration names (the configuration itself,
//! envoyproxy/ratelimit's files, TLS files), with errors that say what is
//! wrong in words: a missing file is named as missing, not "at line 1" of a
//! file that does not exist.

use std::io;
use std::path::Path;

use crate::error::{ConfigError, ConfigErrors, Origin};

/// Why a file cannot be used, in words: `no such file`, `permission
/// denied`, `it is a directory, not a file`, or the system's own words for
/// anything rarer.
pub fn io_reason(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => "no such file".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        io::ErrorKind::IsADirectory => "it is a directory, not a file".to_owned(),
        io::ErrorKind::NotADirectory => "a part of its path is not a directory".to_owned(),
        _ => error.to_string(),
    }
}

/// The error for the file at `path` that cannot be read: `cannot read
/// sluice.yaml: no such file`, with no line.
pub fn unreadable(path: &Path, error: &io::Error) -> ConfigError {
    let file = path.display().to_string();
    ConfigError {
        message: format!("cannot read {file}: {}", io_reason(error)),
        origin: Origin::WholeFile { file },
        path: String::new(),
    }
}

/// The text of the configuration file at `path`. A file that cannot be
/// read is named with the reason; one that is not UTF-8 is reported at
/// the line of its first invalid byte.
pub fn read_file(path: &Path) -> Result<String, ConfigErrors> {
    let bytes = std::fs::read(path).map_err(|e| unreadable(path, &e))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let bad = e.as_bytes().get(valid.len()).copied().unwrap_or_default();
        ConfigError {
            origin: Origin::File {
                file: path.display().to_string(),
                line: line_of(valid),
            },
            path: String::new(),
            message: format!(
                "not UTF-8 text (byte 0x{bad:02x}); a configuration file must be saved as UTF-8"
            ),
        }
        .into()
    })
}

/// The line (from 1) just after `before`, counting line breaks as YAML
/// does: `\r\n`, `\n`, or a lone `\r`.
fn line_of(before: &[u8]) -> usize {
    let lone_cr = before
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\r' && before.get(i + 1) != Some(&b'\n'))
        .count();
    let newlines = before.iter().filter(|&&b| b == b'\n').count();
    1 + newlines + lone_cr
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(path: &Path) -> String {
        read_file(path).unwrap_err().to_string()
    }

    #[test]
    fn a_missing_file_is_named_as_missing_with_no_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.yaml");
        let shown = path.display();
        assert_eq!(message(&path), format!("cannot read {shown}: no such file"));
        let error = read_file(&path).unwrap_err();
        assert_eq!(
            error.0[0].origin,
            Origin::WholeFile {
                file: shown.to_string()
            }
        );
        let below_a_file = path.join("inside.yaml");
        std::fs::write(&path, "policies: {}\n").unwrap();
        assert_eq!(
            message(&below_a_file),
            format!(
                "cannot read {}: a part of its path is not a directory",
                below_a_file.display()
            )
        );
    }

    #[test]
    fn a_directory_is_named_as_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            message(dir.path()),
            format!(
                "cannot read {}: it is a directory, not a file",
                dir.path().display()
            )
        );
    }

    /// The tests run as root in CI, which reads any file: the wording is
    /// checked on the error itself.
    #[test]
    fn a_permission_error_says_so() {
        let error = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(
            unreadable(Path::new("sluice.yaml"), &error).to_string(),
            "cannot read sluice.yaml: permission denied"
        );
        let rare = io::Error::other("disk on fire");
        assert_eq!(io_reason(&rare), "disk on fire");
    }

    #[test]
    fn text_that_is_not_utf8_is_named_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latin1.yaml");
        std::fs::write(&path, b"policies:\r\n  caf\xe9:\r  x\n").unwrap();
        assert_eq!(
            message(&path),
            format!(
                "{}:2: not UTF-8 text (byte 0xe9); a configuration file must be saved as UTF-8",
                path.display()
            )
        );
        assert_eq!(line_of(b"a\r\nb\rc\n"), 4);
    }
}
