//! The decision library that runs inside Redis, and its calling protocol:
//! what [`RedisStore`](super::RedisStore) sends, for tools that call the
//! library directly, such as `bench/run` (through the `redis_library`
//! example).
//!
//! The library is one Lua text, [`SOURCE`], assembled from one readable
//! file per algorithm (`store/redis/lua/`) and documented there: `main.lua`
//! (KEYS, ARGV, the reply and why it must be atomic), `prelude.lua` (the
//! numbers, the per-algorithm table, the packed states and the quota they
//! were saved under), `carry.lua` (a state carried over to a changed
//! quota), `refund.lua` (what a refund gives back). It decides at the caller's time when one is given (tests drive
//! it with a fake clock) and at Redis `TIME` otherwise, so that servers
//! with skewed clocks agree. Redis runs it in one of two forms:
//!
//! - **A Redis Function** (Redis 7+, the default): `FUNCTION LOAD` of
//!   [`function_library`] runs the library once, and each
//!   `FCALL <function_name> …` runs only the decision: about half the cost
//!   of a script call.
//! - **An `EVALSHA` script** (older Redis, or
//!   [`RedisOptions::functions`](super::RedisOptions::functions) off):
//!   [`script`], the library with `return run(KEYS, ARGV)` at the end.
//!
//! Both are named after the hash of the library, so two versions of Sluice
//! on one Redis (a rolling upgrade) each call their own.
//!
//! # The calling protocol, for tools such as `bench/run`
//!
//! One call is `FCALL <function_name> <number of keys> <keys…>` followed by
//! [`Call::arguments`]: the time (empty for Redis `TIME`), the [`Mode`],
//! then per all-or-nothing group its number of checks and their
//! [`VALUES_PER_CHECK`] numbers each ([`values`]), packed as little-endian
//! doubles. The reply is the time decided at, then [`REPLY_PER_CHECK`]
//! integers per check (see `main.lua`). The native module's
//! `SLUICE.CALL <number of keys> <keys…>` takes the same arguments, and a
//! mode prefixed with [`BYTES_REPLY`] (`bd`) asks it for the same integers
//! as one bulk string, 8 bytes of little-endian `i64` each (the Lua
//! library refuses that mode as unknown). A [`Call`] of one check builds
//! all of it:
//!
//! ```
//! use std::time::Duration;
//! use sluice::store::redis::library::{self, Call, Mode};
//! use sluice::{Algorithm, Quota};
//!
//! let quota = Quota::new(Algorithm::TokenBucket, 10, Duration::from_secs(1), None).unwrap();
//! let call = Call::one(Mode::Decide, None, &quota, 1);
//! let text: Vec<String> = call.arguments().iter().map(|a| a.to_text()).collect();
//! // Redis TIME, decide, one check: token bucket, cost 1, not shadow,
//! // capacity 10, period 1 s, a token is 100,000 scaled units, 1 per µs.
//! assert_eq!(text, ["", "d", "1", "1,1,0,10,1000000,100000,1"]);
//! assert!(library::function_library().contains(library::function_name()));
//! ```

use std::sync::OnceLock;

use crate::Quota;

/// The library: the prelude, the six algorithms, carrying a state over to a
/// changed quota, refunds, the entry point
/// `run(keys, argv)`. Neither form's header or footer: see
/// [`function_library`] and [`script`].
pub const SOURCE: &str = concat!(
    include_str!("lua/prelude.lua"),
    include_str!("lua/token_bucket.lua"),
    include_str!("lua/gcra.lua"),
    include_str!("lua/leaky_bucket.lua"),
    include_str!("lua/fixed_window.lua"),
    include_str!("lua/sliding_window_log.lua"),
    include_str!("lua/sliding_window_counter.lua"),
    include_str!("lua/carry.lua"),
    include_str!("lua/refund.lua"),
    include_str!("lua/main.lua"),
);

pub use crate::store::packed::{
    BYTES_REPLY, LATE, Mode, REPLY_PER_CHECK, VALUES_PER_CHECK, code, pack, values,
};

/// The library as a script for `SCRIPT LOAD`/`EVALSHA`.
pub fn script() -> &'static str {
    &script_and_sha().0
}

/// The SHA-1 of [`script`], as `EVALSHA` takes it.
pub fn script_sha() -> &'static str {
    &script_and_sha().1
}

fn script_and_sha() -> &'static (String, String) {
    static SCRIPT: OnceLock<(String, String)> = OnceLock::new();
    SCRIPT.get_or_init(|| {
        let source = format!("{SOURCE}return run(KEYS, ARGV)\n");
        let sha = redis::Script::new(&source).get_hash().to_owned();
        (source, sha)
    })
}

/// The name of the Redis Function library and of its one function:
/// `sluice_` and the first 16 hex digits of [`script_sha`].
pub fn function_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let sha = script_sha();
        format!("sluice_{}", &sha[..16.min(sha.len())])
    })
}

/// The library as `FUNCTION LOAD` takes it: registers [`function_name`].
pub fn function_library() -> &'static str {
    static LIBRARY: OnceLock<String> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let name = function_name();
        format!("#!lua name={name}\n{SOURCE}redis.register_function('{name}', run)\n")
    })
}

/// One argument of a call after its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Argument {
    /// Sent as it is.
    Text(String),
    /// A group's checks: [`VALUES_PER_CHECK`] numbers per check, sent
    /// packed (see [`pack`]).
    Checks(Vec<[u64; VALUES_PER_CHECK]>),
}

impl Argument {
    /// The bytes Redis is sent.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Argument::Text(text) => text.as_bytes().to_vec(),
            Argument::Checks(checks) => {
                let mut out = Vec::with_capacity(checks.len() * VALUES_PER_CHECK * 8);
                for values in checks {
                    pack(values, &mut out);
                }
                out
            }
        }
    }

    /// A printable form: text as it is, checks as their numbers joined by
    /// commas (`bench/run` loads a shim that packs them back).
    pub fn to_text(&self) -> String {
        match self {
            Argument::Text(text) => text.clone(),
            Argument::Checks(checks) => checks
                .iter()
                .flatten()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// The arguments of one call after its keys: a time, a mode and groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The time to decide at in µs since the epoch; `None` for Redis `TIME`.
    pub now_us: Option<u64>,
    /// What the call does.
    pub mode: Mode,
    /// The all-or-nothing groups, in key order: each check's
    /// [`values`].
    pub groups: Vec<Vec<[u64; VALUES_PER_CHECK]>>,
}

impl Call {
    /// A call on one check (one key) of `cost` under `quota`, not shadow.
    pub fn one(mode: Mode, now_us: Option<u64>, quota: &Quota, cost: u64) -> Call {
        Call {
            now_us,
            mode,
            groups: vec![vec![values(quota, cost, false)]],
        }
    }

    /// The arguments after the keys, in order.
    pub fn arguments(&self) -> Vec<Argument> {
        let mut out = Vec::with_capacity(2 + 2 * self.groups.len());
        out.push(Argument::Text(
            self.now_us.map_or_else(String::new, |now| now.to_string()),
        ));
        out.push(Argument::Text(self.mode.argument().into_owned()));
        for group in &self.groups {
            out.push(Argument::Text(group.len().to_string()));
            out.push(Argument::Checks(group.clone()));
        }
        out
    }
}

/// Reading a stored state back: [`packed`](crate::store::packed) holds
/// the one Rust place that knows how the library stores one (shared with
/// the native module); these are its decoders under their earlier names.
pub mod stored {
    pub use crate::store::packed::{decode as packed, decode_log as log};
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Algorithm;
    use std::time::Duration;

    #[test]
    fn checks_are_packed_as_little_endian_doubles() {
        let quota = Quota::new(Algorithm::Gcra, 7, Duration::from_secs(60), None).unwrap();
        let call = Call::one(Mode::Refund { at_us: 42 }, Some(5), &quota, 3);
        let args = call.arguments();
        assert_eq!(args[0].to_text(), "5");
        assert_eq!(args[1].to_text(), "r42");
        assert_eq!(args[2].to_text(), "1");
        let bytes = args[3].to_bytes();
        assert_eq!(bytes.len(), VALUES_PER_CHECK * 8);
        let numbers: Vec<f64> = bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(numbers, [2.0, 3.0, 0.0, 7.0, 60e6, 60e6, 7.0]);
    }
}
