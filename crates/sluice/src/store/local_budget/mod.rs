//! [`LocalBudgets`]: hot keys without a hot Redis. A policy with a
//! [`LocalBudget`](crate::LocalBudget) takes a slice of a key's remaining
//! allowance from Redis in one atomic call (a decision charging the
//! slice's size), spends it in this process, and gives back what it did
//! not spend; Redis sees one call per slice instead of one per decision.
//!
//! # The bound
//!
//! Each process holds less than one slice of a key unspent at any time
//! (one take in flight per key; a take asks `max(slice, need)` and keeps
//! what the request did not use). Every unit admitted was charged to
//! Redis, at the latest when it was admitted: over any interval, what
//! `instances` processes admit is at most what Redis charged in it plus
//! what they held unspent at its start. So a key admits at most
//! `instances × (slice − 1)` units more than its algorithm allows in any
//! window or interval ([`LocalBudget::bound`](crate::LocalBudget::bound),
//! at most `max_overshoot × capacity`). This holds for every algorithm
//! sliced (all but the leaky bucket) whatever the slice's age, and is
//! kept tighter by a slice's lifetime: a slice is spent only until the end
//! of the window it was charged in (fixed window, sliding window counter)
//! or for one period (the others).
//!
//! And the other way: while other processes hold slices, a request may be
//! denied with up to `(instances − 1) × (slice − 1)` units unspent
//! elsewhere (they come back when those processes spend or return them).
//! When Redis's last answer left no room for a whole slice, a take asks
//! for the request's exact need: near its limit a key is decided by Redis
//! one request at a time, exactly.
//!
//! # What a local answer carries
//!
//! `remaining` is what Redis had left at the last take plus what this
//! process holds now, `reset_after` Redis's at the last take less the time
//! since, `retry_after` zero, and [`Source::LocalBudget`](crate::Source).
//! Denials always come from Redis (with its `retry_after`).
//!
//! # Several checks, costs, shadow mode, failures
//!
//! A request is still all or nothing: the checks its slices cover are set
//! aside, the others (and the takes) go to Redis in one call, and if Redis
//! denies, nothing is charged there and the units set aside are put back.
//! A take refused at a slice's size is asked again at the exact need in
//! the same request. Costs above a slice are taken whole. A shadow check
//! spends slices like the others; a shadow denial takes no slice. When
//! Redis fails, the slices held are still spent (they were charged); the
//! rest fails as without local budgets (the [`Fallback`](super::Fallback)
//! above answers).
//!
//! # Returning slices
//!
//! [`LocalBudgets::return_idle`] gives back the slices unused for the idle
//! time (a server calls it every second), [`LocalBudgets::return_all`]
//! every slice (on reload and shutdown); a slice past its lifetime or
//! charged under a quota that changed is given back when next met.
//! Returning is a [`Mode::Refund`](super::redis::library::Mode::Refund)
//! call, which never gives back more than the charge, nor to another
//! window.
//!
//! # Layout
//!
//! - `mod.rs`: [`LocalBudgets`], the [`Store`] decorator.
//! - `table`: the slots and the bookkeeping of one decision, without I/O.
//! - `stats`: [`BudgetStats`], its counters.

mod stats;
mod table;

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

pub use stats::BudgetStats;
pub use table::MAX_SLOTS;
use table::{Busy, Part, Return, Table};

use super::redis::{DecidedAt, RedisStore};
use super::{Check, Store, ensure_distinct};
use crate::algorithm::State;
use crate::clock::Clock;
use crate::{Decision, StoreError};

/// How long a slice may go unused before [`LocalBudgets::return_idle`]
/// gives it back, by default.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(1);

/// A [`RedisStore`] whose checks under a [`LocalBudget`](crate::LocalBudget)
/// spend slices taken from it (see [the module docs](self) for the bound).
/// Checks without one go to the store unchanged. Cloning is cheap: every
/// clone shares the slices (one for the limiter, one for the task that
/// returns idle slices).
///
/// ```no_run
/// use std::time::Duration;
/// use sluice::store::LocalBudgets;
/// use sluice::{Algorithm, Limiter, LocalBudget, Policy, Quota, RedisStore, SystemClock};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = RedisStore::connect("redis://127.0.0.1:6379").await?;
/// let budgets = LocalBudgets::new(redis, SystemClock);
/// let quota = Quota::new(Algorithm::TokenBucket, 100_000, Duration::from_secs(1), None)?;
/// // Three instances, at most 1% of the limit over: slices of 333.
/// let policy = Policy::new("api", quota)?.with_local_budget(Some(LocalBudget::new(0.01, 3)?));
/// let limiter = Limiter::new(budgets.clone(), [policy]);
/// assert!(limiter.check("api", "everyone", 1).await?.allowed);
/// budgets.return_all().await; // at shutdown
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct LocalBudgets {
    shared: Arc<Shared>,
}

struct Shared {
    store: RedisStore,
    clock: Arc<dyn Clock>,
    idle: Duration,
    table: Mutex<Table>,
    /// Woken when a take ends, for the decisions waiting on its slot.
    taken: Notify,
    stats: Arc<BudgetStats>,
}

impl LocalBudgets {
    /// `store` with slices, their lifetimes and idleness timed by `clock`
    /// (give the store's own clock in tests).
    pub fn new(store: RedisStore, clock: impl Clock) -> LocalBudgets {
        LocalBudgets {
            shared: Arc::new(Shared {
                store,
                clock: Arc::new(clock),
                idle: DEFAULT_IDLE,
                table: Mutex::new(Table::default()),
                taken: Notify::new(),
                stats: Arc::default(),
            }),
        }
    }

    /// The same, giving back slices unused for `idle` (default
    /// [`DEFAULT_IDLE`]). Call before cloning.
    pub fn with_idle(mut self, idle: Duration) -> LocalBudgets {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.idle = idle;
        }
        self
    }

    /// The counters, shared with the store.
    pub fn stats(&self) -> Arc<BudgetStats> {
        Arc::clone(&self.shared.stats)
    }

    /// How many keys have a slot (a slice held, or one recently used).
    pub fn slots(&self) -> usize {
        self.shared.table.lock().len()
    }

    /// Gives back the slices not used for the idle time, or past their
    /// lifetime, and forgets their keys; returns how many units went back.
    pub async fn return_idle(&self) -> u64 {
        let now = self.shared.clock.now_us();
        let idle = u64::try_from(self.shared.idle.as_micros()).unwrap_or(u64::MAX);
        let returns = self
            .shared
            .table
            .lock()
            .sweep(now, now.saturating_sub(idle));
        self.give_back(returns).await
    }

    /// Gives back every slice no decision is using now (on reload and at
    /// shutdown); returns how many units went back.
    pub async fn return_all(&self) -> u64 {
        let now = self.shared.clock.now_us();
        let returns = self.shared.table.lock().sweep(now, u64::MAX);
        self.give_back(returns).await
    }

    async fn give_back(&self, returns: Vec<Return>) -> u64 {
        let mut units = 0;
        for r in returns {
            let check = Check::new(&r.policy, &r.key, &r.quota, r.units);
            match self.shared.store.refund(&check, r.at_us).await {
                Ok(()) => {
                    units += r.units;
                    self.shared.stats.returned(Some(r.units));
                }
                Err(error) => {
                    self.shared.stats.returned(None);
                    tracing::debug!(error = %crate::error::chain(&error), "returning a slice failed");
                }
            }
        }
        units
    }

    /// Plans `checks`, waiting while another decision takes a slice they need.
    async fn plan(&self, checks: &[Check<'_>], returns: &mut Vec<Return>) -> Vec<Part> {
        loop {
            let notified = {
                let mut table = self.shared.table.lock();
                match table.plan(checks, self.shared.clock.now_us(), returns) {
                    Ok(parts) => return parts,
                    // Made under the lock, before the take can end: the
                    // wake-up cannot be missed.
                    Err(Busy) => self.shared.taken.notified(),
                }
            };
            notified.await;
        }
    }

    async fn decide_budgeted(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
        let mut returns = Vec::new();
        let parts = self.plan(checks, &mut returns).await;
        // First, while the key is still under the quota they were charged
        // under (a reload changes it at the next take).
        if !returns.is_empty() {
            self.give_back(std::mem::take(&mut returns)).await;
        }
        let mut pending = Pending {
            budgets: self,
            checks,
            parts,
            settled: false,
        };
        let asked = ask(checks, &pending.parts);
        let (mut decided_at, mut decisions) = (DecidedAt::Never, Vec::new());
        if !asked.is_empty() {
            (decided_at, decisions) = self.shared.store.decide_at(&asked).await?;
        }
        let mut admitted = together(checks, &pending.parts, &decisions);
        if !admitted && retake(&mut pending.parts, &decisions, false) {
            // Nothing was charged: ask again, takes refused at a slice's
            // size now at their need only.
            (decided_at, decisions) = (self.shared.store)
                .decide_at(&ask(checks, &pending.parts))
                .await?;
            admitted = together(checks, &pending.parts, &decisions);
        } else if admitted && retake(&mut pending.parts, &decisions, true) {
            // The request went through; a shadow check refused at a
            // slice's size is decided again alone at its need (which
            // leaves no rest to return, so its time is not needed).
            let mut at = 0;
            for (check, part) in checks.iter().zip(&pending.parts) {
                if let Part::Take { need, ask, .. } = *part
                    && check.shadow
                    && need == ask
                    && decisions[at].shadow
                {
                    let again = self
                        .shared
                        .store
                        .decide_at(&[check.with_cost(need)])
                        .await?;
                    if let Some(d) = again.1.first() {
                        decisions[at] = *d;
                    }
                }
                if !matches!(part, Part::Local { .. }) {
                    at += 1;
                }
            }
        }
        let (out, taken) = self.shared.table.lock().settle(
            checks,
            &pending.parts,
            &decisions,
            &decided_at,
            admitted,
            self.shared.clock.now_us(),
        );
        pending.settled = true;
        let took = pending.parts.iter().any(|p| matches!(p, Part::Take { .. }));
        drop(pending);
        if took {
            self.shared.taken.notify_waiters();
        }
        self.shared.stats.decided(asked.is_empty(), taken);
        Ok(out)
    }
}

/// The checks the store must decide for `parts`, takes at their ask.
fn ask<'a>(checks: &[Check<'a>], parts: &[Part]) -> Vec<Check<'a>> {
    checks
        .iter()
        .zip(parts)
        .filter_map(|(check, part)| match *part {
            Part::Store => Some(*check),
            Part::Take { ask, .. } => Some(check.with_cost(ask)),
            Part::Local { .. } => None,
        })
        .collect()
}

/// Whether the store's `decisions` (one per part it was asked) admit the
/// request: every non-shadow one allowed.
fn together(checks: &[Check<'_>], parts: &[Part], decisions: &[Decision]) -> bool {
    let asked = checks
        .iter()
        .zip(parts)
        .filter(|(_, p)| !matches!(p, Part::Local { .. }));
    asked
        .zip(decisions)
        .all(|((c, _), d)| c.shadow || d.allowed)
}

/// Turns every take the store refused at more than its need into a take
/// of its need (only the shadow ones, a shadow refusal, when `shadow`);
/// whether there was one.
fn retake(parts: &mut [Part], decisions: &[Decision], shadow: bool) -> bool {
    let mut answers = decisions.iter();
    let mut again = false;
    for part in parts.iter_mut() {
        let decision = match part {
            Part::Local { .. } => continue,
            _ => answers.next(),
        };
        if let (Part::Take { need, ask, .. }, Some(d)) = (part, decision)
            && (if shadow {
                d.shadow
            } else {
                !d.allowed || d.shadow
            })
            && *ask > *need
        {
            *ask = *need;
            again = true;
        }
    }
    again
}

/// A decision's reservations until it is settled: put back if the store
/// fails or the caller stops waiting.
struct Pending<'a, 'c> {
    budgets: &'a LocalBudgets,
    checks: &'a [Check<'c>],
    parts: Vec<Part>,
    settled: bool,
}

impl Drop for Pending<'_, '_> {
    fn drop(&mut self) {
        if !self.settled {
            let shared = &self.budgets.shared;
            shared.table.lock().abandon(self.checks, &self.parts);
            shared.taken.notify_waiters();
        }
    }
}

impl Store for LocalBudgets {
    async fn decide(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
        if checks.iter().all(|c| table::slice_of(c).is_none()) {
            return self.shared.store.decide(checks).await;
        }
        ensure_distinct(checks)?;
        self.decide_budgeted(checks).await
    }

    async fn peek(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        self.shared.store.peek(check).await
    }

    async fn reset(&self, check: &Check<'_>) -> Result<(), StoreError> {
        self.shared.table.lock().forget(check);
        self.shared.store.reset(check).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.shared.store.ping().await
    }

    async fn inspect(&self, check: &Check<'_>) -> Result<Option<State>, StoreError> {
        self.shared.store.inspect(check).await
    }
}
