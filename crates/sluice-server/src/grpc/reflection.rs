//! Server reflection (`grpc.reflection.v1` and `v1alpha`, tonic-reflection),
//! so that grpcurl and other generic clients can discover and call the
//! rate limit service and health without its `.proto` files.
//!
//! The descriptors come from `envoy-types`, which ships the descriptor set
//! of Envoy's whole API (`src/generated/types.bin`, 3.3 MB) without
//! exporting it. `scripts/envoy-descriptors` extracts from that file
//! `envoy/service/ratelimit/v3/rls.proto` and every file it imports,
//! transitively, with `protoc --descriptor_set_in … --include_imports`
//! (44 KB), into `rls_descriptors.bin`; the test `tests/envoy_descriptors.rs`
//! recomputes it from the locked `envoy-types` and fails when it differs,
//! so a bump cannot leave it stale.

use tonic_reflection::server::{v1, v1alpha};

/// The encoded `FileDescriptorSet` of `envoy/service/ratelimit/v3/rls.proto`
/// and its imports, from the locked `envoy-types`.
pub const RLS_DESCRIPTORS: &[u8] = include_bytes!("rls_descriptors.bin");

/// The reflection service, v1.
pub fn v1() -> v1::ServerReflectionServer<impl v1::ServerReflection> {
    let built = builder().build_v1();
    // The descriptors are constants, checked by the tests: building fails
    // only on a corrupt set, which no input can cause.
    built.unwrap_or_else(|e| unreachable!("the committed descriptors are valid: {e}"))
}

/// The reflection service, v1alpha (what older grpcurl and most other
/// tools still ask).
pub fn v1alpha() -> v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection> {
    let built = builder().build_v1alpha();
    built.unwrap_or_else(|e| unreachable!("the committed descriptors are valid: {e}"))
}

fn builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(RLS_DESCRIPTORS)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}
