//! A flood of millions of distinct long keys into a bounded memory store:
//! the resident memory follows the bound, not the keys.
//!
//! ```sh
//! cargo run --release -p sluice --example key_flood
//! ```
//!
//! Checks `FLOOD` distinct keys of about 1 KB (the longest a request may
//! send is 1 KiB) against a store bounded at `MAX_KEYS`, with a quota of an
//! hour (no key expires during the run: the bound alone holds the memory),
//! and prints the process's resident set size (`VmRSS`) every million keys
//! as one JSON object per line, then the keys held and evicted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fmt::Write;
use std::num::NonZeroUsize;
use std::time::Duration;

use common::{now, resident_bytes};
use sluice::{Algorithm, Check, MemoryStore, Quota, Store};

const FLOOD: usize = 5_000_000;
const MAX_KEYS: usize = 100_000;
const KEY_LEN: usize = 1000;

fn main() {
    let bound = NonZeroUsize::new(MAX_KEYS).expect("non-zero");
    let store = MemoryStore::new().with_max_keys(bound);
    let quota = Quota::new(Algorithm::TokenBucket, 10, Duration::from_secs(3600), None)
        .expect("a valid quota");
    let padding = "k".repeat(KEY_LEN - 12);
    let mut key = String::with_capacity(KEY_LEN);
    let start = resident_bytes();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!("{{\"keys\":0,\"resident_mib\":{:.1}}}", mib(start));
    for i in 0..FLOOD {
        key.clear();
        write!(key, "{i:011}-{padding}").expect("formatting into a String");
        let decision = now(store.decide_one(&Check::new("api", &key, &quota, 1)));
        assert!(decision.expect("a decision").allowed);
        if (i + 1) % 1_000_000 == 0 {
            println!(
                "{{\"keys\":{},\"resident_mib\":{:.1}}}",
                i + 1,
                mib(resident_bytes())
            );
        }
    }
    println!(
        "{{\"max_keys\":{MAX_KEYS},\"key_len\":{KEY_LEN},\"held\":{},\"evicted\":{}}}",
        store.len(),
        store.evictions()
    );
}
