//! Rate limiting for tower services (axum, tonic, hyper) with
//! [Sluice](sluice).
//!
//! # Layout
//!
//! - [`headers`]: the rate-limit response headers, shared with `sluice serve`.
pub mod headers;
