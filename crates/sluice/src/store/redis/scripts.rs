//! The decision script, assembled from one readable `.lua` file per
//! algorithm (see `lua/`), built once per process.
//!
//! The script is documented in `lua/main.lua` (KEYS, ARGV, the reply and
//! why it must be atomic) and `lua/prelude.lua` (the numbers). It uses the
//! caller's time when one is given (tests drive it with a fake clock) and
//! Redis `TIME` otherwise, so that servers with skewed clocks agree.

use std::sync::OnceLock;

use redis::Script;

use crate::Algorithm;

/// The whole script: the prelude, the six algorithms, refunds, the entry point.
pub const SOURCE: &str = concat!(
    include_str!("lua/prelude.lua"),
    include_str!("lua/token_bucket.lua"),
    include_str!("lua/gcra.lua"),
    include_str!("lua/leaky_bucket.lua"),
    include_str!("lua/fixed_window.lua"),
    include_str!("lua/sliding_window_log.lua"),
    include_str!("lua/sliding_window_counter.lua"),
    include_str!("lua/refund.lua"),
    include_str!("lua/main.lua"),
);

/// The script, hashed once; `invoke_async` sends EVALSHA and loads the
/// script on NOSCRIPT (after a Redis restart or `SCRIPT FLUSH`).
pub fn decide() -> &'static Script {
    static SCRIPT: OnceLock<Script> = OnceLock::new();
    SCRIPT.get_or_init(|| Script::new(SOURCE))
}

/// The algorithm's code in the script's ARGV.
pub fn code(algorithm: Algorithm) -> u8 {
    match algorithm {
        Algorithm::TokenBucket => 1,
        Algorithm::Gcra => 2,
        Algorithm::LeakyBucket => 3,
        Algorithm::FixedWindow => 4,
        Algorithm::SlidingWindowLog => 5,
        Algorithm::SlidingWindowCounter => 6,
    }
}

/// Values per check in the reply.
pub const REPLY_PER_CHECK: usize = 6;
