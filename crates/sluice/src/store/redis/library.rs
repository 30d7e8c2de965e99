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
//! integers per check (see `main.lua`). A [`Call`] of one check builds all
//! of it:
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

use std::borrow::Cow;
use std::sync::OnceLock;

use crate::{Algorithm, Quota};

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

/// Numbers per check in a group's packed values: algorithm code, cost,
/// shadow (0/1), capacity, period (µs), unit, rate.
pub const VALUES_PER_CHECK: usize = 7;

/// Integers per check in the reply: allowed (0/1), remaining,
/// reset_after_us, retry_after_us (-1: never), delay_us, shadow (0/1); or,
/// for a check that could not be decided (its group failed alone: a key of
/// a type Sluice never writes, a script error), an error marker
/// `-1, problem, detail, position, 0, 0` (see `lua/main.lua`).
pub const REPLY_PER_CHECK: usize = 6;

/// The code of the error the library answers, deciding nothing, when it
/// runs after the deadline it was given: a first argument `<<deadline>`
/// (instead of the empty one) means Redis `TIME`, and refuse the call if
/// that is past `<deadline>` µs since the epoch. The store sends its calls
/// so, and answers a check whose call was refused as timed out (see
/// `main.lua`).
pub const LATE: &str = "LATE";

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

/// The algorithm's code: its key in the library's `algorithms` table, its
/// position in [`Algorithm::ALL`] from 1 (`token_bucket` 1 …
/// `sliding_window_counter` 6).
pub fn code(algorithm: Algorithm) -> u8 {
    let position = Algorithm::ALL.iter().position(|&a| a == algorithm);
    // Every algorithm is in ALL, and there are far fewer than 255.
    position.map_or(0, |p| p as u8 + 1)
}

/// What a call does with its checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Decides every group, all or nothing, and charges the groups admitted.
    Decide,
    /// Tells what each check would be told at its cost (0: the key as it
    /// stands); charges nothing.
    Peek,
    /// Gives back what an earlier [`Mode::Decide`] call charged, that call
    /// having decided at `at_us` (the first number of its reply); the
    /// checks are the ones charged, with their costs. The store refunds
    /// the slots a Redis Cluster request charged when another slot denied.
    ///
    /// A refund leaves each key as if its charge had not been made, where
    /// the state shows where the charge went: at `at_us`, unless the state
    /// is ahead of both `at_us` and the refund's own time (a clock that
    /// stepped back after a failover), where decide counted it. It never
    /// gives back more than the cost, beyond an untouched key, to another
    /// window or instant, or anything older than `at_us`:
    ///
    /// - token bucket: the level regains the cost, up to the capacity;
    /// - GCRA and leaky bucket: the TAT moves back by the cost, not before `at_us`;
    /// - fixed window: the charged window's count loses the cost (a count
    ///   back at 0 deletes the key);
    /// - sliding window counter: the current count, or the previous one
    ///   when the state has moved one window on, loses the cost (both back
    ///   at 0 deletes the key);
    /// - sliding window log: the entries at the charged instant lose the cost.
    ///
    /// Where the state cannot show where the charge went it gives back
    /// less, except in the cases `lua/refund.lua` marks (a bucket that
    /// would have been full meanwhile, a window state lost and charged
    /// again); its Rust model is tested against it.
    Refund {
        /// The time the charging call decided at, in µs since the epoch.
        at_us: u64,
    },
}

impl Mode {
    /// The mode as the library's second argument: `d`, `p` or `r<at_us>`.
    pub fn argument(self) -> Cow<'static, str> {
        match self {
            Mode::Decide => Cow::Borrowed("d"),
            Mode::Peek => Cow::Borrowed("p"),
            Mode::Refund { at_us } => Cow::Owned(format!("r{at_us}")),
        }
    }
}

/// The [`VALUES_PER_CHECK`] numbers of a check of `cost` under `quota`.
/// Every one is below 2^53 (quota validation keeps them there), so exact
/// as a double.
pub fn values(quota: &Quota, cost: u64, shadow: bool) -> [u64; VALUES_PER_CHECK] {
    [
        u64::from(code(quota.algorithm())),
        cost,
        u64::from(shadow),
        quota.capacity(),
        quota.period_us(),
        quota.scaled_unit(),
        quota.refill_per_us(),
    ]
}

/// Appends `values` to `out` as the library reads them: little-endian
/// doubles.
pub fn pack(values: &[u64; VALUES_PER_CHECK], out: &mut Vec<u8>) {
    for &value in values {
        out.extend_from_slice(&(value as f64).to_le_bytes());
    }
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

/// Reading a stored state back: the one Rust place that knows how the
/// library stores one. A packed state is what `pack2`/`pack3` in
/// `lua/prelude.lua` write: the header `struct.pack(HEADER, code,
/// capacity, period, unit, rate)` with `HEADER = '<BIddI'` (25 bytes: a
/// byte, a 4-byte integer, two doubles, a 4-byte integer, little-endian,
/// unaligned), then two or three little-endian doubles, the algorithm's
/// state in the order its `.lua` file documents. A sliding window log is a
/// sorted set of members `<at_us>:<cost>:c<cum>`
/// (`lua/sliding_window_log.lua`).
pub mod stored {
    use std::collections::VecDeque;

    use crate::Algorithm;
    use crate::algorithm::{
        State, fixed_window, gcra, sliding_window_counter, sliding_window_log, token_bucket,
    };

    /// The header's length in bytes (`HEADER_LEN` in `lua/prelude.lua`).
    const HEADER_LEN: usize = 25;

    /// The state a packed value holds, or what is wrong with it.
    pub fn packed(raw: &[u8]) -> Result<State, String> {
        let foreign = || {
            format!(
                "holds {} bytes that are not a state Sluice packed",
                raw.len()
            )
        };
        let (header, body) = raw.split_at_checked(HEADER_LEN).ok_or_else(foreign)?;
        let algorithm = Algorithm::ALL
            .iter()
            .copied()
            .find(|&a| u64::from(super::code(a)) == u64::from(header[0]))
            .ok_or_else(foreign)?;
        let numbers = body
            .chunks(8)
            .map(|chunk| {
                let bytes: [u8; 8] = chunk.try_into().ok()?;
                whole(f64::from_le_bytes(bytes))
            })
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(foreign)?;
        Ok(match (algorithm, numbers.as_slice()) {
            (Algorithm::TokenBucket, &[level, at_us]) => {
                State::TokenBucket(token_bucket::State { level, at_us })
            }
            (Algorithm::Gcra, &[at_us, frac]) => State::Gcra(gcra::State { at_us, frac }),
            (Algorithm::LeakyBucket, &[at_us, frac]) => {
                State::LeakyBucket(gcra::State { at_us, frac })
            }
            (Algorithm::FixedWindow, &[window, count]) => {
                State::FixedWindow(fixed_window::State { window, count })
            }
            (Algorithm::SlidingWindowCounter, &[window, current, previous]) => {
                State::SlidingWindowCounter(sliding_window_counter::State {
                    window,
                    current,
                    previous,
                })
            }
            _ => return Err(foreign()),
        })
    }

    /// The log a sorted set's members (oldest first) hold, or what is
    /// wrong with them.
    pub fn log(members: &[String]) -> Result<State, String> {
        let entries = members
            .iter()
            .map(|member| {
                let entry = |member: &str| {
                    let (at, rest) = member.split_once(':')?;
                    let (cost, cum) = rest.split_once(":c")?;
                    Some(sliding_window_log::Entry {
                        at_us: at.parse().ok()?,
                        cost: cost.parse().ok()?,
                        cum: cum.parse().ok()?,
                    })
                };
                entry(member)
                    .ok_or_else(|| format!("holds {member:?}, not a log entry of Sluice's"))
            })
            .collect::<Result<VecDeque<_>, String>>()?;
        Ok(State::SlidingWindowLog(Box::new(
            sliding_window_log::State { entries },
        )))
    }

    /// A double that is a whole number below 2^53, as every stored value is.
    fn whole(x: f64) -> Option<u64> {
        (x.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&x)).then_some(x as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_state_sluice_did_not_pack_is_refused_not_a_panic() {
        for raw in [&b""[..], b"hello", &[9u8; 41], &[1u8; 49]] {
            assert!(stored::packed(raw).is_err(), "{raw:?}");
        }
        assert!(stored::log(&["1:2:c3".into(), "junk".into()]).is_err());
    }

    #[test]
    fn every_algorithm_has_its_own_code() {
        let codes: std::collections::HashSet<u8> =
            Algorithm::ALL.iter().map(|&a| code(a)).collect();
        assert_eq!(codes.len(), Algorithm::ALL.len());
    }

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
