//! Sluice's benchmarks, in one criterion run so that ratios between them
//! mean something on a shared machine:
//!
//! - `algorithm/*`: each algorithm's pure step on a hot state;
//! - `store/memory/*`: the memory store on the fake clock, through the one
//!   generic function every [`sluice::Store`] is benchmarked with;
//! - `keyed/*`: a [`sluice::Limiter`] on the memory store against governor's
//!   keyed limiter, same `String` keys, one and two threads.
//!
//! ```sh
//! cargo bench -p sluice --bench limiters -- --warm-up-time 1 --measurement-time 3
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod scenarios;

use std::time::Duration;

use criterion::Criterion;

fn main() {
    // Short by default on a shared two-core machine; flags override.
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    scenarios::algorithms::bench(&mut c);
    scenarios::stores::bench(&mut c);
    scenarios::keyed::bench(&mut c);
    c.final_summary();
}
