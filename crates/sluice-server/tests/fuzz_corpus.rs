//! Issue 12: the kept corpus of the fuzz targets in `fuzz/` (the config
//! file, durations, `POST /v1/check` bodies, envoyproxy/ratelimit files),
//! replayed on stable through the same checks the targets run
//! (`sluice_server::fuzzing`).

use sluice_server::fuzzing;
use sluice_testkit::corpus;

#[test]
fn config_corpus_keeps_its_properties() {
    corpus::replay("config", fuzzing::config);
}

#[test]
fn duration_corpus_keeps_its_properties() {
    corpus::replay("duration", fuzzing::duration);
}

#[test]
fn check_request_corpus_keeps_its_properties() {
    corpus::replay("check_request", fuzzing::check_request);
}

#[test]
fn envoy_config_corpus_keeps_its_properties() {
    corpus::replay("envoy_config", fuzzing::envoy_config);
}
