//! Fuzz target `forwarded`: the check is `sluice_tower::fuzzing::forwarded`,
//! which the corpus replay test (`crates/sluice-tower/tests/fuzz_corpus.rs`)
//! runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_tower::fuzzing::forwarded(data));
