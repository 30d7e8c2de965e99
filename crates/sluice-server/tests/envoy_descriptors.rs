//! Issue 13: the descriptors that server reflection serves are those of the
//! locked `envoy-types`: recomputed from its `types.bin` by
//! `scripts/envoy-descriptors` (which finds the package with
//! `cargo metadata --offline`), they equal the committed file, so a bump of
//! envoy-types cannot leave them stale.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

#[test]
fn the_committed_descriptors_are_those_of_the_locked_envoy_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("rls_descriptors.bin");
    let out = Command::new(root.join("scripts/envoy-descriptors"))
        .arg(&fresh)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/envoy-descriptors failed (it needs protoc: Debian's protobuf-compiler, \
         which scripts/test installs):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = std::fs::read(fresh).unwrap();
    assert!(
        fresh == sluice_server::grpc::reflection::RLS_DESCRIPTORS,
        "src/grpc/rls_descriptors.bin differs from the descriptors of the locked envoy-types \
         ({} bytes, committed {}): run scripts/envoy-descriptors and commit the file",
        fresh.len(),
        sluice_server::grpc::reflection::RLS_DESCRIPTORS.len()
    );
}
