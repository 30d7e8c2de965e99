//! Fuzz target `duration`: the check is `sluice_server::fuzzing::duration`, which the
//! corpus replay test (`crates/sluice-server/tests/fuzz_corpus.rs`) runs too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_server::fuzzing::duration(data));
