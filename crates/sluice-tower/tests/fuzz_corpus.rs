//! Issue 12: the kept corpus of the `forwarded` fuzz target in `fuzz/`
//! (`Forwarded` and `X-Forwarded-For` field lines), replayed on stable
//! through the same check the target runs (`sluice_tower::fuzzing`).

use sluice_testkit::corpus;
use sluice_tower::fuzzing;

#[test]
fn forwarded_corpus_keeps_its_properties() {
    corpus::replay("forwarded", fuzzing::forwarded);
}
