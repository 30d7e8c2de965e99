//! The Rust model of the Redis library's `lua/refund.lua`: what refund mode
//! ([`Mode::Refund`](super::packed::Mode::Refund)) leaves of a key's
//! state, as a pure function of the algorithms' own [`State`]. The native
//! Redis module refunds with it; the Redis store's `refund` tests hold the
//! Lua to it on a real Redis.
//!
//! The spec is written in `lua/refund.lua` and on `Mode::Refund`: a refund
//! of `cost` charged at `at` leaves the key as if the charge had not been
//! made where the state shows where the charge went, and otherwise gives
//! back less, never to a window or an instant the charge did not go to.

use crate::Quota;
use crate::algorithm::{State, fixed_window, gcra, token_bucket};

/// Where the charge went, in windows or µs: `at`'s own, unless the stored
/// one is ahead of both `at`'s and `now`'s (a clock that stepped back
/// counts from the state, as the charge did).
fn charged(stored: u64, at: u64, now: u64) -> u64 {
    if stored > at && stored > now {
        stored
    } else {
        at
    }
}

/// What a refund of `cost` charged at `at_us`, made at `now_us`, leaves of
/// `state` under `quota`; `None` when the key is deleted (untouched). A
/// state of another algorithm is left as it is.
pub fn refund(
    state: Option<&State>,
    quota: &Quota,
    cost: u64,
    at_us: u64,
    now_us: u64,
) -> Option<State> {
    let state = state?;
    let unit = u128::from(quota.scaled_unit());
    let rate = u128::from(quota.refill_per_us());
    let period = quota.period_us();
    let taken = u128::from(cost) * unit;
    match state {
        State::TokenBucket(s) if s.at_us >= at_us => {
            let t = now_us.max(s.at_us);
            let capacity = u128::from(quota.scaled_capacity());
            let level = u128::from(s.level) + u128::from(t - s.at_us) * rate + taken;
            (level < capacity).then_some(State::TokenBucket(token_bucket::State {
                level: level as u64,
                at_us: t,
            }))
        }
        State::Gcra(s) | State::LeakyBucket(s) => {
            let tat = u128::from(s.at_us) * rate + u128::from(s.frac);
            let (now, at) = (u128::from(now_us) * rate, u128::from(at_us) * rate);
            if tat <= now || tat <= at {
                return Some(state.clone());
            }
            let back = tat.saturating_sub(taken).max(at);
            (back > now).then(|| {
                let s = gcra::State {
                    at_us: (back / rate) as u64,
                    frac: (back % rate) as u64,
                };
                match state {
                    State::Gcra(_) => State::Gcra(s),
                    _ => State::LeakyBucket(s),
                }
            })
        }
        State::FixedWindow(s) if s.window == charged(s.window, at_us / period, now_us / period) => {
            let count = s.count.saturating_sub(cost);
            (count > 0).then_some(State::FixedWindow(fixed_window::State {
                window: s.window,
                count,
            }))
        }
        State::SlidingWindowCounter(s) => {
            let window = charged(s.window, at_us / period, now_us / period);
            let mut s = *s;
            if s.window == window {
                s.current = s.current.saturating_sub(cost);
            } else if s.window == window + 1 {
                s.previous = s.previous.saturating_sub(cost);
            }
            (s.current > 0 || s.previous > 0).then_some(State::SlidingWindowCounter(s))
        }
        State::SlidingWindowLog(log) => {
            let mut log = log.clone();
            let newest = log.entries.back().map(|e| e.at_us)?;
            let instant = charged(newest, at_us, now_us);
            if let Some(i) = log.entries.iter().position(|e| e.at_us == instant) {
                // The running totals of that entry and every newer one
                // lose what it gives back.
                let taken = log.entries[i].cost.min(cost);
                for entry in log.entries.iter_mut().skip(i) {
                    entry.cum -= taken;
                }
                log.entries[i].cost -= taken;
                if log.entries[i].cost == 0 {
                    log.entries.remove(i);
                }
            }
            (!log.entries.is_empty()).then_some(State::SlidingWindowLog(log))
        }
        other => Some(other.clone()),
    }
}
