//! The bytes the Redis decision library reads and writes, in Rust: the
//! packed checks a call carries, the packed states it keeps, the sliding
//! log's members, and the reply's shape. Not gated by the `redis` feature,
//! so that a crate built on `sluice` with `default-features = false` (no
//! tokio, no redis client), such as the native Redis module
//! (`crates/sluice-redis-module`), reads and writes exactly what the Lua
//! library does; the Redis store's `library` re-exports it.
//!
//! A packed state is what `pack2`/`pack3` in `lua/prelude.lua` write: the
//! header `struct.pack('<BIddI', code, capacity, period, unit, rate)` (25
//! bytes: a byte, a 4-byte integer, two doubles, a 4-byte integer,
//! little-endian, unaligned; the quota the state was saved under), then two
//! or three little-endian doubles, the algorithm's state in the order its
//! `.lua` file documents. A sliding window log is a sorted set of members
//! `<at_us>:<cost>:c<cum>` at score `at_us` (`lua/sliding_window_log.lua`).
//!
//! ```
//! use std::time::Duration;
//! use sluice::store::packed;
//! use sluice::{algorithm, Algorithm, Quota};
//!
//! let quota = Quota::new(Algorithm::FixedWindow, 5, Duration::from_secs(1), None).unwrap();
//! let (_, state) = algorithm::decide(None, &quota, 2, 3_000_000);
//! let state = state.unwrap();
//! let raw = packed::encode(&quota, &state).unwrap();
//! assert_eq!(raw.len(), packed::HEADER_LEN + 16);
//! assert_eq!(packed::decode(&raw), Ok(state));
//! assert_eq!(packed::saved_under(&raw), Some(quota));
//! ```

use std::borrow::Cow;
use std::collections::VecDeque;

use crate::algorithm::{
    State, fixed_window, gcra, sliding_window_counter, sliding_window_log, token_bucket,
};
use crate::{Algorithm, Quota};

/// Numbers per check in a group's packed values: algorithm code, cost,
/// shadow (0/1), capacity, period (µs), unit, rate.
pub const VALUES_PER_CHECK: usize = 7;

/// Integers per check in the reply: allowed (0/1), remaining,
/// reset_after_us, retry_after_us (-1: never), delay_us, shadow (0/1); or,
/// for a check that could not be decided (its group failed alone: a key of
/// a type Sluice never writes, a script error), an error marker
/// `-1, problem, detail, position, 0, 0` (see `lua/main.lua`).
pub const REPLY_PER_CHECK: usize = 6;

/// The prefix of a mode argument (`bd`, `bp`, `br<at_us>`) that asks the
/// native module for its reply as one bulk string: the same integers, in
/// the same order, each as 8 bytes of a little-endian `i64` (errors stay
/// errors). Spares the client a RESP integer per value. The Lua library,
/// and a module older than this form, refuse it as an unknown mode
/// (`sluice: unknown mode bd`), and the store then asks for the array.
pub const BYTES_REPLY: u8 = b'b';

/// The code of the error the library answers, deciding nothing, when it
/// runs after the deadline it was given: a first argument `<<deadline>`
/// (instead of the empty one) means Redis `TIME`, and refuse the call if
/// that is past `<deadline>` µs since the epoch. The store sends its calls
/// so, and answers a check whose call was refused as timed out (see
/// `main.lua`).
pub const LATE: &str = "LATE";

/// The header's length in bytes (`HEADER_LEN` in `lua/prelude.lua`).
pub const HEADER_LEN: usize = 25;

/// Milliseconds added to every expiry when the caller gives the time
/// (`ttl_slack_ms` in `lua/prelude.lua`): its clock need not follow
/// Redis's, which expires the keys.
pub const TTL_SLACK_MS: u64 = 60_000;

/// A sliding log's running total past which the library renumbers the log
/// from 0 (2^50; `save_log` in `lua/sliding_window_log.lua`).
pub const RENUMBER_AT: u64 = 1 << 50;

/// The algorithm's code: its key in the library's `algorithms` table, its
/// position in [`Algorithm::ALL`] from 1 (`token_bucket` 1 …
/// `sliding_window_counter` 6).
pub fn code(algorithm: Algorithm) -> u8 {
    let position = Algorithm::ALL.iter().position(|&a| a == algorithm);
    // Every algorithm is in ALL, and there are far fewer than 255.
    position.map_or(0, |p| p as u8 + 1)
}

/// The algorithm whose [`code`] is `code`.
pub fn algorithm_of(code: u64) -> Option<Algorithm> {
    Algorithm::ALL
        .iter()
        .copied()
        .find(|&a| u64::from(self::code(a)) == code)
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
    /// again); its Rust model, [`refund`](crate::store::refund::refund),
    /// is tested against it.
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

    /// The mode an argument names (the inverse of [`Mode::argument`]).
    pub fn parse(argument: &[u8]) -> Option<Mode> {
        match argument {
            b"d" => Some(Mode::Decide),
            b"p" => Some(Mode::Peek),
            [b'r', at @ ..] => Some(Mode::Refund {
                at_us: whole_number(at)?,
            }),
            _ => None,
        }
    }
}

/// The decimal number `text` holds, digits only (as the library's
/// `'^r(%d+)$'`).
pub fn whole_number(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
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

/// The checks a group's packed values hold (the inverse of [`pack`]), or
/// `None` when they are not `n` checks of whole numbers.
pub fn unpack(raw: &[u8], n: usize) -> Option<Vec<[u64; VALUES_PER_CHECK]>> {
    let mut checks = Vec::with_capacity(n);
    unpack_into(raw, n, &mut checks)?;
    Some(checks)
}

/// [`unpack`], appending the checks to `out` (one vector for every group
/// of a call); `None`, with `out` as it may be left, when they are not `n`
/// checks of whole numbers.
pub fn unpack_into(raw: &[u8], n: usize, out: &mut Vec<[u64; VALUES_PER_CHECK]>) -> Option<()> {
    if raw.len() != n.checked_mul(VALUES_PER_CHECK * 8)? {
        return None;
    }
    out.reserve(n);
    for check in raw.chunks_exact(VALUES_PER_CHECK * 8) {
        let mut values = [0; VALUES_PER_CHECK];
        for (value, bytes) in values.iter_mut().zip(check.chunks_exact(8)) {
            *value = whole(f64::from_le_bytes(bytes.try_into().ok()?))?;
        }
        out.push(values);
    }
    Some(())
}

/// The quota whose numbers are `code`, `capacity`, `period`, `unit` and
/// `rate` (as a check's values and a state's header carry them), or `None`
/// when no valid quota has them.
pub fn quota_of(code: u64, capacity: u64, period: u64, unit: u64, rate: u64) -> Option<Quota> {
    let algorithm = algorithm_of(code)?;
    if unit == 0 || !period.is_multiple_of(unit) {
        return None;
    }
    // unit = period / g and rate = limit / g: limit = rate * g.
    let limit = rate.checked_mul(period / unit)?;
    let burst = algorithm.has_burst().then_some(capacity);
    let period = std::time::Duration::from_micros(period);
    let quota = Quota::new(algorithm, limit, period, burst).ok()?;
    (quota.capacity() == capacity && quota.scaled_unit() == unit && quota.refill_per_us() == rate)
        .then_some(quota)
}

/// The quota a check's values name.
pub fn quota_of_check(values: &[u64; VALUES_PER_CHECK]) -> Option<Quota> {
    let [code, _, _, capacity, period, unit, rate] = *values;
    quota_of(code, capacity, period, unit, rate)
}

/// The header of a state saved under `quota` (`with_header` in
/// `lua/prelude.lua`).
pub fn header(quota: &Quota) -> [u8; HEADER_LEN] {
    let mut out = [0; HEADER_LEN];
    out[0] = code(quota.algorithm());
    // Capacity and rate are at most 10^9 (quota validation): 4 bytes.
    out[1..5].copy_from_slice(&(quota.capacity() as u32).to_le_bytes());
    out[5..13].copy_from_slice(&(quota.period_us() as f64).to_le_bytes());
    out[13..21].copy_from_slice(&(quota.scaled_unit() as f64).to_le_bytes());
    out[21..25].copy_from_slice(&(quota.refill_per_us() as u32).to_le_bytes());
    out
}

/// `state` packed under `quota`, as the library writes it; `None` for a
/// sliding log (a sorted set: see [`member`]).
pub fn encode(quota: &Quota, state: &State) -> Option<Vec<u8>> {
    let numbers: &[u64] = match state {
        State::TokenBucket(s) => &[s.level, s.at_us],
        State::Gcra(s) | State::LeakyBucket(s) => &[s.at_us, s.frac],
        State::FixedWindow(s) => &[s.window, s.count],
        State::SlidingWindowCounter(s) => &[s.window, s.current, s.previous],
        State::SlidingWindowLog(_) => return None,
    };
    let mut out = Vec::with_capacity(HEADER_LEN + 8 * numbers.len());
    out.extend_from_slice(&header(quota));
    for &n in numbers {
        out.extend_from_slice(&(n as f64).to_le_bytes());
    }
    Some(out)
}

/// The quota numbers a packed state was saved under, as a quota, or
/// `None` for a value that is not a packed state (`saved_under` in
/// `lua/carry.lua`).
pub fn saved_under(raw: &[u8]) -> Option<Quota> {
    if raw.len() != HEADER_LEN + 16 && raw.len() != HEADER_LEN + 24 {
        return None;
    }
    let u32_at = |at: usize| raw[at..at + 4].try_into().ok().map(u32::from_le_bytes);
    let f64_at = |at: usize| raw[at..at + 8].try_into().ok().map(f64::from_le_bytes);
    quota_of(
        u64::from(raw[0]),
        u64::from(u32_at(1)?),
        whole(f64_at(5)?)?,
        whole(f64_at(13)?)?,
        u64::from(u32_at(21)?),
    )
}

/// The state a packed value holds, or what is wrong with it.
pub fn decode(raw: &[u8]) -> Result<State, String> {
    let foreign = || {
        format!(
            "holds {} bytes that are not a state Sluice packed",
            raw.len()
        )
    };
    let (header, body) = raw.split_at_checked(HEADER_LEN).ok_or_else(foreign)?;
    let algorithm = algorithm_of(u64::from(header[0])).ok_or_else(foreign)?;
    // At most three numbers, read without a vector: this runs for every
    // check the native module decides.
    let mut numbers = [0; 3];
    if body.len() > 8 * numbers.len() || !body.len().is_multiple_of(8) {
        return Err(foreign());
    }
    for (number, chunk) in numbers.iter_mut().zip(body.chunks_exact(8)) {
        let bytes: [u8; 8] = chunk.try_into().map_err(|_| foreign())?;
        *number = whole(f64::from_le_bytes(bytes)).ok_or_else(foreign)?;
    }
    Ok(match (algorithm, &numbers[..body.len() / 8]) {
        (Algorithm::TokenBucket, &[level, at_us]) => {
            State::TokenBucket(token_bucket::State { level, at_us })
        }
        (Algorithm::Gcra, &[at_us, frac]) => State::Gcra(gcra::State { at_us, frac }),
        (Algorithm::LeakyBucket, &[at_us, frac]) => State::LeakyBucket(gcra::State { at_us, frac }),
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

/// A sliding log entry as the library's member: `<at_us>:<cost>:c<cum>`.
pub fn member(entry: &sliding_window_log::Entry) -> String {
    format!("{}:{}:c{}", entry.at_us, entry.cost, entry.cum)
}

/// The entry a sorted set's member holds, or `None` for a member Sluice
/// did not write (`log_entry` in `lua/sliding_window_log.lua`: digits only,
/// a cost of at least 1 and a total of at least the cost).
pub fn entry(member: &[u8]) -> Option<sliding_window_log::Entry> {
    let text = std::str::from_utf8(member).ok()?;
    let (at, rest) = text.split_once(':')?;
    let (cost, cum) = rest.split_once(":c")?;
    let [at_us, cost, cum] = [at, cost, cum].map(|n| whole_number(n.as_bytes()));
    let entry = sliding_window_log::Entry {
        at_us: at_us?,
        cost: cost?,
        cum: cum?,
    };
    (entry.cost >= 1 && entry.cum >= entry.cost).then_some(entry)
}

/// The log a sorted set's members (oldest first) hold, or what is wrong
/// with them.
pub fn decode_log<M: AsRef<[u8]>>(members: &[M]) -> Result<State, String> {
    let entries = members
        .iter()
        .map(|m| {
            entry(m.as_ref()).ok_or_else(|| {
                format!(
                    "holds {:?}, not a log entry of Sluice's",
                    String::from_utf8_lossy(m.as_ref())
                )
            })
        })
        .collect::<Result<VecDeque<_>, String>>()?;
    Ok(log(entries))
}

/// A log of `entries`, oldest first.
pub fn log(entries: VecDeque<sliding_window_log::Entry>) -> State {
    State::SlidingWindowLog(Box::new(sliding_window_log::State { entries }))
}

/// A double that is a whole number below 2^53, as every stored value is.
fn whole(x: f64) -> Option<u64> {
    // Whole when the integer it truncates to is itself: no `fract` (a
    // call to libm's `trunc` on x86-64 without SSE4.1), as this runs for
    // every value of every check the native module reads.
    let n = x as u64;
    ((0.0..9_007_199_254_740_992.0).contains(&x) && n as f64 == x).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_whole_numbers_below_2_pow_53_are_values() {
        for (x, whole_value) in [
            (0.0, Some(0)),
            (-0.0, Some(0)),
            (3.0, Some(3)),
            (9_007_199_254_740_991.0, Some(9_007_199_254_740_991)),
            (9_007_199_254_740_992.0, None),
            (1.5, None),
            (0.5, None),
            (-1.0, None),
            (f64::NAN, None),
            (f64::INFINITY, None),
        ] {
            assert_eq!(whole(x), whole_value, "{x}");
        }
    }

    #[test]
    fn a_state_sluice_did_not_pack_is_refused_not_a_panic() {
        for raw in [&b""[..], b"hello", &[9u8; 41], &[1u8; 49]] {
            assert!(decode(raw).is_err(), "{raw:?}");
            assert!(saved_under(raw).is_none(), "{raw:?}");
        }
        assert!(decode_log(&["1:2:c3", "junk"]).is_err());
        // A token bucket's header with one number too few, too many, or a
        // partial one.
        let quota = Quota::new(Algorithm::TokenBucket, 5, Duration::from_secs(1), None).unwrap();
        let state = State::TokenBucket(token_bucket::State { level: 3, at_us: 7 });
        let good = encode(&quota, &state).unwrap();
        assert_eq!(decode(&good), Ok(state));
        let whole_one = 9.0_f64.to_le_bytes();
        for bad in [
            &good[..good.len() - 8],
            &[&good[..], &whole_one].concat(),
            &[&good[..], &whole_one, &whole_one].concat(),
            &good[..good.len() - 1],
        ] {
            assert!(decode(bad).is_err(), "{} bytes", bad.len());
        }
        assert!(entry(b"5:0:c0").is_none());
        assert!(entry(b"5:3:c2").is_none());
        assert!(entry(b"+5:1:c1").is_none());
    }

    #[test]
    fn every_algorithm_has_its_own_code() {
        let codes: std::collections::HashSet<u8> =
            Algorithm::ALL.iter().map(|&a| code(a)).collect();
        assert_eq!(codes.len(), Algorithm::ALL.len());
        for a in Algorithm::ALL {
            assert_eq!(algorithm_of(u64::from(code(a))), Some(a));
        }
    }

    #[test]
    fn a_checks_values_name_its_quota_back() {
        for algorithm in Algorithm::ALL {
            for (limit, period, burst) in [(7, 60, None), (10, 1, Some(25)), (3, 86_400, None)] {
                let burst = burst.filter(|_| algorithm.has_burst());
                let quota =
                    Quota::new(algorithm, limit, Duration::from_secs(period), burst).unwrap();
                let values = values(&quota, 2, true);
                assert_eq!(quota_of_check(&values), Some(quota));
                let mut raw = Vec::new();
                pack(&values, &mut raw);
                assert_eq!(unpack(&raw, 1), Some(vec![values]));
                assert_eq!(unpack(&raw, 2), None);
            }
        }
    }

    #[test]
    fn modes_read_back() {
        for mode in [Mode::Decide, Mode::Peek, Mode::Refund { at_us: 42 }] {
            assert_eq!(Mode::parse(mode.argument().as_bytes()), Some(mode));
        }
        for bad in [&b"r"[..], b"r-1", b"x", b"", b"d "] {
            assert_eq!(Mode::parse(bad), None);
        }
    }
}
