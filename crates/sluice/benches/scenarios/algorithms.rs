//! Each algorithm's pure step, `algorithm::decide`, on a hot state: no
//! store, no lock, no clock; what every store pays at least.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use sluice::{Algorithm, Quota, algorithm};

/// A key checked every `STEP_US`, under a quota of `LIMIT` per `PERIOD`: half
/// the rate the quota allows, so that the step takes its admitting path.
pub const LIMIT: u64 = 20;
/// See [`LIMIT`].
pub const PERIOD: Duration = Duration::from_millis(1);
/// See [`LIMIT`].
pub const STEP_US: u64 = 100;

/// An arbitrary instant, aligned to no window.
pub const START_US: u64 = 1_764_000_000_123_457;

/// The quota every hot-key scenario runs under.
pub fn quota(algorithm: Algorithm) -> Quota {
    Quota::new(algorithm, LIMIT, PERIOD, None).expect("a valid quota")
}

pub fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("algorithm");
    group.throughput(Throughput::Elements(1));
    for a in Algorithm::ALL {
        let quota = quota(a);
        // Warm the state up: a full sliding log, windows with counts.
        let mut state = None;
        let mut now = START_US;
        for _ in 0..2 * LIMIT {
            now += STEP_US;
            let (d, next) = algorithm::decide(state.as_ref(), &quota, 1, now);
            assert!(d.allowed, "{a} denied while warming up");
            state = next.or(state);
        }
        let state = state.expect("a warmed-up state");
        let now = now + STEP_US;
        assert!(algorithm::decide(Some(&state), &quota, 1, now).0.allowed);
        group.bench_function(a.name(), |b| {
            b.iter(|| {
                algorithm::decide(
                    Some(black_box(&state)),
                    black_box(&quota),
                    black_box(1),
                    black_box(now),
                )
            });
        });
    }
    group.finish();
}
