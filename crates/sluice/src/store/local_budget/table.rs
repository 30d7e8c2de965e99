//! The slices this process holds, one slot per (policy, key), and the
//! bookkeeping of one decision over them: which checks a slice answers,
//! which need the store, and what the store's answer leaves. No I/O and no
//! clock reads: the caller gives `now` and holds the lock.

use std::collections::HashMap;
use std::time::Duration;

use crate::store::Check;
use crate::store::redis::DecidedAt;
use crate::{Algorithm, Decision, Quota, Source};

/// The most slots kept: a key beyond them is decided by the store alone.
pub const MAX_SLOTS: usize = 100_000;

type Map<V> = HashMap<Box<str>, V, foldhash::fast::RandomState>;

/// What this process holds of one key's allowance.
#[derive(Debug)]
struct Slot {
    /// The quota the slice was charged under.
    quota: Quota,
    /// Units held and free to spend.
    left: u64,
    /// Units set aside by decisions still waiting for the store.
    reserved: u64,
    /// When the store charged the newest slice (its clock): what a return
    /// names.
    at_us: Option<u64>,
    /// When the slice stops being spent (by this process's clock).
    expires_us: u64,
    /// The last decision that used the slot.
    used_us: u64,
    /// A decision is taking a slice for this key: others wait for it.
    taking: bool,
    /// Whether the store's last answer left room for a whole slice: if
    /// not, the next take asks for the exact need only.
    room: bool,
    /// The store's `remaining` and `reset_after` when it last answered,
    /// and when: what a local answer reports, aged.
    base_remaining: u64,
    base_reset_us: u64,
    base_at_us: u64,
    /// Changes whenever the slot's units are dropped or returned, so that a
    /// reservation made before is not put back into a newer slice.
    generation: u64,
}

impl Slot {
    fn new(quota: Quota, now_us: u64, generation: u64) -> Slot {
        Slot {
            quota,
            left: 0,
            reserved: 0,
            at_us: None,
            expires_us: now_us,
            used_us: now_us,
            taking: false,
            room: true,
            base_remaining: quota.capacity(),
            base_reset_us: 0,
            base_at_us: now_us,
            generation,
        }
    }

    /// What a check answered from this slot is told: the store's last
    /// `remaining` plus what this process holds, and its `reset_after` aged.
    fn local_decision(&self, now_us: u64) -> Decision {
        let limit = self.quota.capacity();
        let remaining = self.base_remaining.saturating_add(self.left).min(limit);
        let aged = now_us.saturating_sub(self.base_at_us);
        Decision::allowed(limit, remaining, self.base_reset_us.saturating_sub(aged))
            .with_source(Source::LocalBudget)
    }

    /// Until when a slice charged now may be spent: the end of the window
    /// it was charged in for the window algorithms, a period for the others.
    fn lifetime_end(quota: &Quota, now_us: u64) -> u64 {
        let period = quota.period_us();
        match quota.algorithm() {
            Algorithm::FixedWindow | Algorithm::SlidingWindowCounter => {
                (now_us / period + 1) * period
            }
            _ => now_us.saturating_add(period),
        }
    }
}

/// Units to give back to the store: a slice's unspent rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Return {
    /// The check's policy (state name).
    pub policy: Box<str>,
    /// The check's key.
    pub key: Box<str>,
    /// The quota the units were charged under.
    pub quota: Quota,
    /// How many units.
    pub units: u64,
    /// When the store charged them.
    pub at_us: u64,
}

/// How one check of a decision is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// By the store, at the check's own cost (no slice applies).
    Store,
    /// By the slot's units alone: `reserved` set aside for it.
    Local { reserved: u64, generation: u64 },
    /// By the store, charging `ask` (the check's need, or a whole slice),
    /// `reserved` of the slot's units added to it.
    Take {
        reserved: u64,
        need: u64,
        ask: u64,
        generation: u64,
    },
}

/// Every slot, by policy then key.
#[derive(Default)]
pub struct Table {
    slots: Map<Map<Slot>>,
    len: usize,
    generations: u64,
}

/// A slot another decision is taking a slice for: wait, then plan again.
#[derive(Debug)]
pub struct Busy;

impl Table {
    fn slot(&mut self, check: &Check<'_>) -> Option<&mut Slot> {
        self.slots.get_mut(check.policy)?.get_mut(check.key)
    }

    fn next_generation(&mut self) -> u64 {
        self.generations += 1;
        self.generations
    }

    /// Plans `checks` at `now_us`: one part per check, with the slots'
    /// units set aside and their takes started; the stale slices found on
    /// the way are pushed to `returns`. [`Busy`], with nothing changed,
    /// when a slot it needs is being taken by another decision.
    pub fn plan(
        &mut self,
        checks: &[Check<'_>],
        now_us: u64,
        returns: &mut Vec<Return>,
    ) -> Result<Vec<Part>, Busy> {
        if checks
            .iter()
            .any(|c| slice_of(c).is_some() && self.slot(c).is_some_and(|s| s.taking))
        {
            return Err(Busy);
        }
        Ok(checks
            .iter()
            .map(|check| self.plan_one(check, now_us, returns))
            .collect())
    }

    fn plan_one(&mut self, check: &Check<'_>, now_us: u64, returns: &mut Vec<Return>) -> Part {
        let Some(slice) = slice_of(check) else {
            return Part::Store;
        };
        if self.slot(check).is_none() {
            if self.len >= MAX_SLOTS {
                return Part::Store;
            }
            let generation = self.next_generation();
            let slot = Slot::new(*check.quota, now_us, generation);
            let keys = self.slots.entry(check.policy.into()).or_default();
            keys.insert(check.key.into(), slot);
            self.len += 1;
        }
        let generation = self.next_generation();
        let Some(slot) = self.slot(check) else {
            return Part::Store;
        };
        // A slice charged under another quota (a reload) or past its
        // lifetime is not spent: its rest goes back.
        if slot.reserved == 0 && (slot.quota != *check.quota || now_us >= slot.expires_us) {
            if let (Some(at_us), true) = (slot.at_us, slot.left > 0) {
                returns.push(Return {
                    policy: check.policy.into(),
                    key: check.key.into(),
                    quota: slot.quota,
                    units: slot.left,
                    at_us,
                });
            }
            *slot = Slot::new(*check.quota, now_us, generation);
        }
        slot.used_us = now_us;
        if slot.left >= check.cost {
            slot.left -= check.cost;
            slot.reserved += check.cost;
            return Part::Local {
                reserved: check.cost,
                generation: slot.generation,
            };
        }
        let reserved = slot.left;
        let need = check.cost - reserved;
        slot.left = 0;
        slot.reserved += reserved;
        slot.taking = true;
        Part::Take {
            reserved,
            need,
            ask: if slot.room { need.max(slice) } else { need },
            generation: slot.generation,
        }
    }

    /// Settles `parts` after the store answered `decisions` (one per part
    /// that is not [`Part::Local`], in order; empty when none asked it),
    /// each made when `decided_at` says, the request `admitted` or not: a granted take's rest is
    /// kept, every other reservation put back. Returns each check's
    /// decision as the caller is told it, and how many slices were taken.
    pub fn settle(
        &mut self,
        checks: &[Check<'_>],
        parts: &[Part],
        decisions: &[Decision],
        decided_at: &DecidedAt,
        admitted: bool,
        now_us: u64,
    ) -> (Vec<Decision>, u64) {
        let mut from_store = decisions.iter().enumerate();
        let mut out = Vec::with_capacity(parts.len());
        let mut taken = 0;
        for (check, part) in checks.iter().zip(parts) {
            let (store, at_us) = match part {
                Part::Local { .. } => (None, None),
                _ => from_store
                    .next()
                    .map_or((None, None), |(i, d)| (Some(*d), decided_at.of(i))),
            };
            let slot = match self.slot(check) {
                Some(slot) if part_generation(part) == Some(slot.generation) => Some(slot),
                _ => None,
            };
            let decision = match (*part, slot, store) {
                (Part::Store, _, Some(d)) => d,
                (Part::Local { reserved, .. }, Some(slot), _) => {
                    slot.reserved -= reserved;
                    if !admitted {
                        slot.left += reserved;
                    }
                    slot.local_decision(now_us)
                }
                (Part::Local { .. }, None, _) => {
                    Decision::allowed(check.quota.capacity(), 0, 0).with_source(Source::LocalBudget)
                }
                (
                    Part::Take {
                        reserved,
                        need,
                        ask,
                        ..
                    },
                    Some(slot),
                    Some(d),
                ) => {
                    slot.taking = false;
                    slot.reserved -= reserved;
                    let granted = admitted && d.allowed && !d.shadow;
                    if granted {
                        taken += 1;
                        slot.left = ask - need;
                        slot.at_us = at_us;
                        slot.expires_us = Slot::lifetime_end(&slot.quota, now_us);
                    } else {
                        slot.left += reserved;
                    }
                    slot.room =
                        d.allowed && !d.shadow && d.remaining >= slice_of(check).unwrap_or(0);
                    slot.base_remaining = d.remaining;
                    slot.base_reset_us = micros(d.reset_after);
                    slot.base_at_us = now_us;
                    let held = slot.left.saturating_add(d.remaining);
                    Decision {
                        remaining: held.min(d.limit),
                        ..d
                    }
                }
                // A store's decision without its slot (dropped meanwhile):
                // as the store told it.
                (Part::Take { .. }, None, Some(d)) => d,
                (_, _, None) => Decision::allowed(check.quota.capacity(), 0, 0),
            };
            out.push(decision);
        }
        (out, taken)
    }

    /// Puts every reservation of `parts` back and ends their takes: the
    /// store was not asked, or failed.
    pub fn abandon(&mut self, checks: &[Check<'_>], parts: &[Part]) {
        for (check, part) in checks.iter().zip(parts) {
            let Some(slot) = self.slot(check) else {
                continue;
            };
            if part_generation(part) != Some(slot.generation) {
                continue;
            }
            match *part {
                Part::Local { reserved, .. } => {
                    slot.reserved -= reserved;
                    slot.left += reserved;
                }
                Part::Take { reserved, .. } => {
                    slot.taking = false;
                    slot.reserved -= reserved;
                    slot.left += reserved;
                }
                Part::Store => {}
            }
        }
    }

    /// Removes the slots not in use since `idle_before_us` (all of them
    /// with `u64::MAX`), or past their lifetime, that no decision is using
    /// now; returns the units they held.
    pub fn sweep(&mut self, now_us: u64, idle_before_us: u64) -> Vec<Return> {
        let mut returns = Vec::new();
        let mut removed = 0;
        for (policy, keys) in &mut self.slots {
            keys.retain(|key, slot| {
                let idle = slot.used_us < idle_before_us || now_us >= slot.expires_us;
                let keep = slot.taking || slot.reserved > 0 || !idle;
                if !keep {
                    removed += 1;
                    if let (Some(at_us), true) = (slot.at_us, slot.left > 0) {
                        returns.push(Return {
                            policy: policy.clone(),
                            key: key.clone(),
                            quota: slot.quota,
                            units: slot.left,
                            at_us,
                        });
                    }
                }
                keep
            });
        }
        self.slots.retain(|_, keys| !keys.is_empty());
        self.len -= removed;
        returns
    }

    /// Forgets `check`'s slot, without returning it (the key was reset).
    pub fn forget(&mut self, check: &Check<'_>) {
        if let Some(keys) = self.slots.get_mut(check.policy)
            && keys
                .get(check.key)
                .is_some_and(|s| !s.taking && s.reserved == 0)
        {
            keys.remove(check.key);
            self.len -= 1;
        }
    }

    /// How many slots are held.
    pub fn len(&self) -> usize {
        self.len
    }
}

/// The slice size of `check`, when its key is sliced at its cost.
pub fn slice_of(check: &Check<'_>) -> Option<u64> {
    if check.cost == 0 {
        return None;
    }
    check.local_budget?.slice(check.quota)
}

fn part_generation(part: &Part) -> Option<u64> {
    match *part {
        Part::Store => None,
        Part::Local { generation, .. } | Part::Take { generation, .. } => Some(generation),
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
