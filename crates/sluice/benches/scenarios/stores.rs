//! Every in-process [`Store`] through one generic function, on the fake
//! clock: one hot key per algorithm, and an all-or-nothing check of two
//! policies. (The Redis store pays a network round trip per decision; it is
//! measured with a server, not here.)

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use sluice::{Algorithm, Check, FakeClock, MemoryStore, Quota, Store};

use super::algorithms::{START_US, STEP_US, quota};
use super::now;

pub fn bench(c: &mut Criterion) {
    bench_store(c, "memory", MemoryStore::with_clock);
}

/// Benchmarks the store `make` builds on a fake clock that moves
/// [`STEP_US`] before each check, so the key is checked at half the rate
/// its quota allows and the check takes the admitting path, as most do.
fn bench_store<S: Store>(c: &mut Criterion, name: &str, make: impl Fn(FakeClock) -> S) {
    let mut group = c.benchmark_group(format!("store/{name}"));
    group.throughput(Throughput::Elements(1));
    for a in Algorithm::ALL {
        let quota = quota(a);
        let clock = FakeClock::new(START_US);
        let store = make(clock.clone());
        let check = Check::new("api", "user-0000042", &quota, 1);
        let mut t = START_US;
        group.bench_function(a.name(), |b| {
            b.iter(|| {
                t += STEP_US;
                clock.set(t);
                let d = now(store.decide_one(black_box(&check))).expect("a decision");
                debug_assert!(d.allowed);
                d
            });
        });
    }

    // All or nothing over two policies of the same key.
    let (second, minute) = (
        Quota::new(Algorithm::TokenBucket, 1_000_000, PER_SECOND, None).expect("a valid quota"),
        Quota::new(Algorithm::FixedWindow, 60_000_000, PER_MINUTE, None).expect("a valid quota"),
    );
    let clock = FakeClock::new(START_US);
    let store = make(clock.clone());
    let checks = [
        Check::new("per-second", "user-0000042", &second, 1),
        Check::new("per-minute", "user-0000042", &minute, 1),
    ];
    let mut t = START_US;
    group.bench_function("two_policies", |b| {
        b.iter(|| {
            t += STEP_US;
            clock.set(t);
            now(store.decide(black_box(&checks))).expect("decisions")
        });
    });
    group.finish();
}

const PER_SECOND: std::time::Duration = std::time::Duration::from_secs(1);
const PER_MINUTE: std::time::Duration = std::time::Duration::from_secs(60);
