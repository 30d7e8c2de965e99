//! Resident memory per key: how many bytes the memory store (and, for
//! comparison, governor's keyed limiter) keeps resident for each of a million
//! distinct keys.
//!
//! ```sh
//! cargo run --release -p sluice --example memory_per_key
//! ```
//!
//! Each store is measured in a process of its own (this program runs itself
//! once per store), so that memory one store freed cannot hide the other's.
//! The process reads its resident set size (`VmRSS` in `/proc/self/status`)
//! before and after `KEYS` checks of distinct 12-byte keys (`user-0000001`),
//! made one at a time into one reused buffer: everything the store keeps,
//! its own copy of each key included, is counted, and nothing else is. The
//! quota is long enough that no key expires during the run. Prints one JSON
//! object per store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fmt::Write;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::process::Command;
use std::time::Duration;

use common::{now, resident_bytes};
use sluice::{Algorithm, Limiter, MemoryStore, Policy, Quota};

const KEYS: usize = 1_000_000;
const STORES: [&str; 2] = ["sluice-memory", "governor-keyed"];

fn main() {
    match std::env::args().nth(1) {
        Some(store) => measure(&store),
        None => {
            let me = std::env::current_exe().expect("the program's own path");
            for store in STORES {
                let status = Command::new(&me).arg(store).status().expect("a run");
                assert!(status.success(), "measuring {store} failed: {status}");
            }
        }
    }
}

/// Measures `store` in this process and prints the result.
fn measure(store: &str) {
    let mut key = String::with_capacity(32);
    let key_of = |key: &mut String, i: usize| {
        key.clear();
        write!(key, "user-{i:07}").expect("formatting into a String");
    };
    key_of(&mut key, 0);
    let key_len = key.len();
    let (before, after, len) = match store {
        "sluice-memory" => {
            let quota = Quota::new(Algorithm::TokenBucket, 10, Duration::from_secs(3600), None)
                .expect("a valid quota");
            let policy = Policy::new("api", quota).expect("a valid policy");
            let limiter = Limiter::new(MemoryStore::new(), [policy]);
            let before = resident_bytes();
            for i in 0..KEYS {
                key_of(&mut key, i);
                assert!(
                    now(limiter.check("api", &key, 1))
                        .expect("a decision")
                        .allowed
                );
            }
            let after = resident_bytes();
            (before, after, black_box(&limiter).store().len())
        }
        "governor-keyed" => {
            let quota = governor::Quota::per_hour(NonZeroU32::new(10).expect("non-zero"));
            let limiter = governor::DefaultKeyedRateLimiter::<String>::keyed(quota);
            let before = resident_bytes();
            for i in 0..KEYS {
                key_of(&mut key, i);
                assert!(limiter.check_key(&key).is_ok());
            }
            let after = resident_bytes();
            (before, after, black_box(&limiter).len())
        }
        other => panic!("unknown store {other:?}; expected one of {STORES:?}"),
    };
    assert_eq!(len, KEYS, "{store} holds every key");
    let per_key = (after - before) as f64 / KEYS as f64;
    println!(
        "{{\"store\":\"{store}\",\"keys\":{KEYS},\"key_len\":{key_len},\"bytes_per_key\":{per_key:.1}}}"
    );
}
