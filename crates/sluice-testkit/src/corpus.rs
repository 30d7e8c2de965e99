//! The kept corpus of the fuzz targets in `fuzz/` (issue 12), replayed on
//! stable by a normal test: each file is fed to the same check the fuzz
//! target runs (`sluice_server::fuzzing`, `sluice_tower::fuzzing`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

/// The fewest files a target's corpus may hold: fewer means it was lost
/// or emptied, and the replay would pass having checked nothing.
pub const MIN_FILES: usize = 10;

/// `fuzz/corpus/<target>` in this repository.
pub fn dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../fuzz/corpus/{target}"))
}

/// Feeds every file of `target`'s corpus to `check`, and panics naming
/// each file whose check failed (every file is tried first, so one run
/// lists them all); also when the corpus has fewer than [`MIN_FILES`].
/// Answers how many files were replayed.
pub fn replay(target: &str, check: impl Fn(&[u8])) -> usize {
    let dir = dir(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list the corpus {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("cannot list the corpus {}: {e}", dir.display()));
    files.sort();
    assert!(
        files.len() >= MIN_FILES,
        "the corpus {} has {} files, fewer than {MIN_FILES}",
        dir.display(),
        files.len()
    );
    let failed: Vec<String> = files
        .iter()
        .filter(|file| {
            let data = std::fs::read(file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "the {target} check failed on {} of {} corpus files:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
    files.len()
}
