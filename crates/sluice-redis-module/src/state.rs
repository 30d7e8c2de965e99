//! A key's state read for a check and written back after it: the same
//! keys, values, expiries and type rules as the Lua library
//! (`lua/prelude.lua`, `carry.lua`, `sliding_window_log.lua`), in the
//! shared codec's bytes (`sluice::store::packed`).
//!
//! - A packed state (a string) saved under another quota is carried over
//!   to the check's first (`sluice::algorithm::carry`), and the carried
//!   state kept (or the key deleted when nothing carries), whatever the
//!   decision, as `bring` does.
//! - A sliding log is read as `read_log` reads it, in O(log n): its newest
//!   entry, its oldest live one and, for a denial, the entry whose expiry
//!   makes room, found by the search `first_reaching` makes. The step
//!   decides on that view of at most three entries, which holds the same
//!   totals (what the step reads: the oldest live and newest totals, and
//!   the first entry reaching its target); an admission writes what
//!   `save_log` writes.
//! - A value of a type Sluice writes in the wrong place reads as untouched
//!   and is replaced at the next admission; a type it never writes fails
//!   the check ([`Failure::refused`]) and is left alone.

use std::collections::VecDeque;

use sluice::algorithm::{self, State, sliding_window_log::Entry};
use sluice::store::packed::{self, HEADER_LEN, RENUMBER_AT};
use sluice::{Decision, Quota};

use crate::keyspace::{Keyspace, Kind};

/// Ranks read in one `ZRANGE` once a search has narrowed to them (`SPAN`
/// in `lua/sliding_window_log.lua`).
const SPAN: u64 = 128;

/// Why a check could not be decided: its error marker's problem and detail
/// (see `lua/main.lua`).
#[derive(Debug, PartialEq, Eq)]
pub struct Failure {
    /// 1: a key of a type Sluice never writes; 2: the library failed.
    pub problem: i64,
    /// For problem 1, the type's code.
    pub detail: i64,
}

impl Failure {
    /// A key of the type `code` names (see [`Kind::Other`]).
    pub fn refused(code: i64) -> Failure {
        Failure {
            problem: 1,
            detail: code,
        }
    }

    /// Anything else: `why` goes to the Redis log.
    pub fn broken(keyspace: &Keyspace<'_>, why: &str) -> Failure {
        keyspace.warn(&format!("sluice: a check failed: {why}"));
        Failure {
            problem: 2,
            detail: 0,
        }
    }
}

/// Where a check reads and writes: the keyspace, the call's time and the
/// expiry slack.
pub struct Site<'a> {
    /// The commands.
    pub keyspace: Keyspace<'a>,
    /// The time the call decides at, in µs since the epoch.
    pub now: u64,
    /// Added to every expiry (the caller's clock need not be Redis's).
    pub slack_ms: u64,
}

/// The sliding log as a check reads it.
#[derive(Clone, Debug)]
pub struct LogView {
    /// The value is not a log of Sluice's: untouched, replaced (deleted
    /// first) at the next admission.
    replace: bool,
    /// The newest entry's member and entry.
    newest: Option<(Vec<u8>, Entry)>,
    /// The entries read (the oldest live ones and the newest), as the
    /// step's state.
    state: State,
}

/// A key's state as a check reads it.
pub enum Loaded {
    /// A packed state (`None`: untouched).
    Packed(Option<State>),
    /// A sliding log.
    Log(LogView),
}

impl Loaded {
    /// The step's state.
    pub fn state(&self) -> Option<&State> {
        match self {
            Loaded::Packed(state) => state.as_ref(),
            Loaded::Log(view) => Some(&view.state),
        }
    }
}

/// A write an admission makes once its group is known to admit.
pub struct Save {
    key: Vec<u8>,
    what: Write,
    ttl_ms: u64,
}

enum Write {
    Packed(Vec<u8>),
    Log { view: LogView, added: Entry },
}

impl Site<'_> {
    fn ttl_ms(&self, decision: &Decision) -> u64 {
        let reset_us = u64::try_from(decision.reset_after.as_micros()).unwrap_or(u64::MAX);
        reset_us.div_ceil(1000).max(1) + self.slack_ms
    }

    fn text(n: u64) -> Vec<u8> {
        n.to_string().into_bytes()
    }

    fn broken(&self, why: String) -> Failure {
        Failure::broken(&self.keyspace, &why)
    }

    /// What a check of `cost` under `quota` reads of `key`; when `keep`,
    /// a packed state carried over to `quota` is kept (a decision), else
    /// nothing is written (a peek).
    pub fn load(
        &self,
        key: &[u8],
        quota: &Quota,
        cost: u64,
        keep: bool,
    ) -> Result<Loaded, Failure> {
        // Read first, as the Lua does (`redis.pcall`): the key's type is
        // asked only when the read fails on it.
        let other_type = |own: Kind| -> Result<Kind, Failure> {
            match self.keyspace.kind(key).map_err(|e| self.broken(e))? {
                Kind::Other(code) => Err(Failure::refused(code)),
                kind if kind == own => Err(self.broken("a read of its own type failed".into())),
                kind => Ok(kind),
            }
        };
        if quota.algorithm() == sluice::Algorithm::SlidingWindowLog {
            return Ok(Loaded::Log(
                match self.keyspace.members("ZRANGE", &[key, b"-1", b"-1"]) {
                    Ok(newest) => self.read_log(key, quota, cost, newest)?,
                    // A string: another algorithm's state, replaced.
                    Err(_) => match other_type(Kind::Zset)? {
                        Kind::String => LogView::replaced(),
                        _ => LogView::empty(),
                    },
                },
            ));
        }
        // Read in place: the state under `quota`, or what another
        // quota's carries over (`Err`).
        let read = self.keyspace.read(key, |raw| {
            if raw.get(..HEADER_LEN) == Some(&packed::header(quota)[..]) {
                return Ok(packed::decode(raw).ok());
            }
            Err(packed::saved_under(raw).and_then(|old| {
                let state = packed::decode(raw).ok()?;
                algorithm::carry(&state, &old, quota, self.now)
            }))
        });
        let read = match read {
            Ok(read) => read,
            // The log's sorted set: untouched (SET replaces it).
            Err(_) => {
                other_type(Kind::String)?;
                None
            }
        };
        let carried = match read {
            None => return Ok(Loaded::Packed(None)),
            Some(Ok(state)) => return Ok(Loaded::Packed(state)),
            Some(Err(carried)) => carried,
        };
        if keep {
            match &carried {
                Some(state) => {
                    let standing = algorithm::decide(Some(state), quota, 0, self.now).0;
                    self.set_packed(key, quota, state, self.ttl_ms(&standing))?;
                }
                None => self.delete(key)?,
            }
        }
        Ok(Loaded::Packed(carried))
    }

    /// The write that keeps `next`, the state decided from `loaded` by
    /// `decision`.
    pub fn save_of(
        &self,
        key: &[u8],
        quota: &Quota,
        loaded: Loaded,
        decision: &Decision,
        next: State,
    ) -> Result<Save, Failure> {
        let what = match loaded {
            Loaded::Packed(_) => Write::Packed(
                packed::encode(quota, &next)
                    .ok_or_else(|| self.broken("no packed state".into()))?,
            ),
            Loaded::Log(view) => {
                let added = match &next {
                    State::SlidingWindowLog(log) => log.entries().back().copied(),
                    _ => None,
                };
                let added = added.ok_or_else(|| self.broken("no logged admission".into()))?;
                Write::Log { view, added }
            }
        };
        Ok(Save {
            key: key.to_vec(),
            what,
            ttl_ms: self.ttl_ms(decision),
        })
    }

    /// Makes `save`'s writes, as `save_packed` and `save_log` do.
    pub fn save(&self, save: Save, quota: &Quota) -> Result<(), Failure> {
        let key = &save.key[..];
        match save.what {
            Write::Packed(value) => self.set(key, &value, save.ttl_ms),
            Write::Log { view, added } => {
                if view.replace {
                    self.delete(key)?;
                }
                match &view.newest {
                    // The same instant: one entry.
                    Some((member, newest)) if newest.at_us() == added.at_us() => {
                        self.run("ZREM", &[key, member])?
                    }
                    // Dropped: what had expired when the newest entry was logged.
                    Some((_, newest)) => {
                        let upto = newest.at_us().saturating_sub(quota.period_us());
                        self.run("ZREMRANGEBYSCORE", &[key, b"-inf", &Self::text(upto)])?
                    }
                    None => {}
                }
                let member = packed::member(&added);
                self.run(
                    "ZADD",
                    &[key, &Self::text(added.at_us()), member.as_bytes()],
                )?;
                self.run("PEXPIRE", &[key, &Self::text(save.ttl_ms)])?;
                if added.cum() > RENUMBER_AT {
                    self.renumber(key)?;
                }
                Ok(())
            }
        }
    }

    /// Gives back a charge of `cost` made at `at_us` to `key`, as
    /// `refund_check` does, with the Rust model (`sluice::store::refund`).
    pub fn refund(&self, key: &[u8], quota: &Quota, cost: u64, at_us: u64) -> Result<(), Failure> {
        let kind = self.keyspace.kind(key).map_err(|e| self.broken(e))?;
        if quota.algorithm() == sluice::Algorithm::SlidingWindowLog {
            if kind != Kind::Zset {
                return Ok(());
            }
            return self.refund_log(key, quota, cost, at_us);
        }
        if kind != Kind::String {
            return Ok(());
        }
        let raw = self.keyspace.get(key).map_err(|e| self.broken(e))?;
        let Some(raw) = raw.filter(|raw| raw.get(..HEADER_LEN) == Some(&packed::header(quota)[..]))
        else {
            return Ok(());
        };
        let Ok(state) = packed::decode(&raw) else {
            return Ok(());
        };
        match sluice::store::refund::refund(Some(&state), quota, cost, at_us, self.now) {
            None => self.delete(key),
            Some(after) if after != state => {
                let value = packed::encode(quota, &after)
                    .ok_or_else(|| self.broken("no packed state".into()))?;
                self.keyspace
                    .set_keep_ttl(key, &value)
                    .map_err(|e| self.broken(e))
            }
            Some(_) => Ok(()),
        }
    }

    /// The log's refund: the entries from the charged instant on are all
    /// the model reads and changes.
    fn refund_log(&self, key: &[u8], quota: &Quota, cost: u64, at_us: u64) -> Result<(), Failure> {
        let newest = self.members("ZRANGE", &[key, b"-1", b"-1"])?;
        let Some(newest) = newest.first().and_then(|m| packed::entry(m)) else {
            return Ok(());
        };
        let instant = if newest.at_us() > at_us && newest.at_us() > self.now {
            newest.at_us()
        } else {
            at_us
        };
        let members = self.members("ZRANGEBYSCORE", &[key, &Self::text(instant), b"+inf"])?;
        let Ok(view) = packed::decode_log(&members) else {
            return Ok(());
        };
        let after = sluice::store::refund::refund(Some(&view), quota, cost, at_us, self.now);
        if after.as_ref() == Some(&view) {
            return Ok(());
        }
        for member in &members {
            self.run("ZREM", &[key, member])?;
        }
        if let Some(State::SlidingWindowLog(log)) = after {
            for entry in log.entries() {
                let member = packed::member(entry);
                self.run(
                    "ZADD",
                    &[key, &Self::text(entry.at_us()), member.as_bytes()],
                )?;
            }
        }
        Ok(())
    }

    /// `read_log`: the newest entry, the oldest live one, and for a check
    /// that may be denied the live entries its wait is among.
    fn read_log(
        &self,
        key: &[u8],
        quota: &Quota,
        cost: u64,
        newest: Vec<Vec<u8>>,
    ) -> Result<LogView, Failure> {
        let Some(member) = newest.into_iter().next() else {
            return Ok(LogView::empty());
        };
        let Some(newest) = packed::entry(&member) else {
            return Ok(LogView::replaced());
        };
        let period = quota.period_us();
        let t = self.now.max(newest.at_us());
        let mut entries = VecDeque::new();
        if newest.at_us() + period > t {
            let after = format!("({}", t - period).into_bytes();
            let oldest = self.members(
                "ZRANGEBYSCORE",
                &[key, &after, b"+inf", b"LIMIT", b"0", b"1"],
            )?;
            let Some(oldest_member) = oldest.into_iter().next() else {
                return Ok(LogView::replaced());
            };
            let oldest = packed::entry(&oldest_member).filter(|o| o.cum() <= newest.cum());
            let Some(oldest) = oldest else {
                return Ok(LogView::replaced());
            };
            entries.push_back(oldest);
            let used = newest.cum() - (oldest.cum() - oldest.cost());
            let limit = quota.limit();
            if cost <= limit && used + cost > limit {
                // A denial: its wait is at the first entry whose total
                // reaches the target (`first_reaching`).
                let target = newest.cum() + cost - limit;
                if oldest.cum() < target
                    && let Some(found) =
                        self.first_reaching(key, &oldest_member, &oldest, &newest, target)?
                {
                    entries.push_back(found);
                }
            }
        }
        if entries.back().is_none_or(|e| e.at_us() != newest.at_us()) {
            entries.push_back(newest);
        }
        Ok(LogView {
            replace: false,
            newest: Some((member, newest)),
            state: packed::log(entries),
        })
    }

    /// The first entry after `oldest` (the oldest live one) whose running
    /// total reaches `target`, found as `first_reaching` finds it: every
    /// entry holds at least 1, so it is at most `target - base - 1` ranks
    /// after the oldest live one and at most `cum - target` ranks before
    /// the newest; spans of up to [`SPAN`] ranks are read in one `ZRANGE`,
    /// wider ones first halved by one-rank reads. `None` when a member on
    /// the way is not Sluice's (the step then waits for the newest entry).
    fn first_reaching(
        &self,
        key: &[u8],
        oldest_member: &[u8],
        oldest: &Entry,
        newest: &Entry,
        target: u64,
    ) -> Result<Option<Entry>, Failure> {
        let rank = |reply: Result<crate::keyspace::Reply, String>| match reply {
            Ok(crate::keyspace::Reply::Int(n)) => u64::try_from(n).ok(),
            _ => None,
        };
        let first = rank(self.keyspace.run("ZRANK", &[key, oldest_member]));
        let n = rank(self.keyspace.run("ZCARD", &[key]));
        let (Some(first), Some(n)) = (first, n) else {
            return Ok(None);
        };
        let base = oldest.cum() - oldest.cost();
        let mut lo = first.max(n.saturating_sub(1).saturating_sub(newest.cum() - target));
        let mut hi = n
            .saturating_sub(1)
            .min(first + (target - base).saturating_sub(1));
        if lo > hi {
            return Ok(None);
        }
        let at = |rank: u64| -> Result<Option<Entry>, Failure> {
            let r = Self::text(rank);
            let m = self.members("ZRANGE", &[key, &r, &r])?;
            Ok(m.first().and_then(|m| packed::entry(m)))
        };
        while hi - lo >= SPAN {
            let mid = lo + (hi - lo) / 2;
            let Some(entry) = at(mid)? else {
                return Ok(None);
            };
            if entry.cum() >= target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let span = self.members("ZRANGE", &[key, &Self::text(lo), &Self::text(hi)])?;
        for member in &span {
            let Some(entry) = packed::entry(member) else {
                return Ok(None);
            };
            if entry.cum() >= target {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    /// The log renumbered from 0 (its totals near 2^50), in O(n), once.
    fn renumber(&self, key: &[u8]) -> Result<(), Failure> {
        let members = self.members("ZRANGE", &[key, b"0", b"-1"])?;
        let Ok(State::SlidingWindowLog(log)) = packed::decode_log(&members) else {
            return Ok(());
        };
        let Some(first) = log.entries().front() else {
            return Ok(());
        };
        let base = first.cum() - first.cost();
        for (member, entry) in members.iter().zip(log.entries()) {
            self.run("ZREM", &[key, member])?;
            let renumbered = format!("{}:{}:c{}", entry.at_us(), entry.cost(), entry.cum() - base);
            self.run(
                "ZADD",
                &[key, &Self::text(entry.at_us()), renumbered.as_bytes()],
            )?;
        }
        Ok(())
    }

    fn set_packed(
        &self,
        key: &[u8],
        quota: &Quota,
        state: &State,
        ttl_ms: u64,
    ) -> Result<(), Failure> {
        let value =
            packed::encode(quota, state).ok_or_else(|| self.broken("no packed state".into()))?;
        self.set(key, &value, ttl_ms)
    }

    fn set(&self, key: &[u8], value: &[u8], ttl_ms: u64) -> Result<(), Failure> {
        self.keyspace
            .set(key, value, ttl_ms)
            .map_err(|e| self.broken(e))
    }

    fn delete(&self, key: &[u8]) -> Result<(), Failure> {
        self.keyspace.delete(key).map_err(|e| self.broken(e))
    }

    fn run(&self, command: &str, args: &[&[u8]]) -> Result<(), Failure> {
        self.keyspace
            .run(command, args)
            .map(drop)
            .map_err(|e| self.broken(format!("{command}: {e}")))
    }

    fn members(&self, command: &str, args: &[&[u8]]) -> Result<Vec<Vec<u8>>, Failure> {
        self.keyspace
            .members(command, args)
            .map_err(|e| self.broken(format!("{command}: {e}")))
    }
}

impl LogView {
    fn empty() -> LogView {
        LogView {
            replace: false,
            newest: None,
            state: packed::log(VecDeque::new()),
        }
    }

    fn replaced() -> LogView {
        LogView {
            replace: true,
            ..LogView::empty()
        }
    }
}
