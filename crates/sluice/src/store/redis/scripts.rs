//! The decision library, assembled from one readable `.lua` file per
//! algorithm (see `lua/`), and the two forms Redis runs it in.
//!
//! The library is documented in `lua/main.lua` (KEYS, ARGV, the reply and
//! why it must be atomic) and `lua/prelude.lua` (the numbers). It uses the
//! caller's time when one is given (tests drive it with a fake clock) and
//! Redis `TIME` otherwise, so that servers with skewed clocks agree.
//!
//! - **A Redis Function** (Redis 7+, the default): `FUNCTION LOAD` runs the
//!   library once, and each `FCALL` runs only the decision, not the
//!   definitions: about half the cost of a script call.
//! - **An `EVALSHA` script** (older Redis, or `RedisOptions::functions`
//!   off): the library with `return run(KEYS, ARGV)` at the end.
//!
//! Both are named after the hash of the library, so two versions of Sluice
//! on one Redis (a rolling upgrade) each call their own.

use std::sync::OnceLock;

use crate::Algorithm;

/// The library: the prelude, the six algorithms, refunds, the entry point.
pub const LIBRARY: &str = concat!(
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

/// The library as a script for `SCRIPT LOAD`/`EVALSHA`, and its SHA-1.
pub fn script() -> &'static (String, String) {
    static SCRIPT: OnceLock<(String, String)> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        let source = format!("{LIBRARY}return run(KEYS, ARGV)\n");
        let sha = redis::Script::new(&source).get_hash().to_owned();
        (source, sha)
    })
}

/// The name of the library and of its one function: `sluice_` and the
/// first 16 hex digits of the script's SHA-1.
pub fn function_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let sha = &script().1;
        format!("sluice_{}", &sha[..16.min(sha.len())])
    })
}

/// The library as `FUNCTION LOAD` takes it.
pub fn function_library() -> String {
    let name = function_name();
    format!("#!lua name={name}\n{LIBRARY}redis.register_function('{name}', run)\n")
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
/// Values per check in a group's packed values.
pub const VALUES_PER_CHECK: usize = 7;
