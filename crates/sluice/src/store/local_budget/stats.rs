//! [`BudgetStats`]: what the local budgets did, for metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of a [`LocalBudgets`](super::LocalBudgets), shared with it:
/// read them at any time (a metrics scrape).
#[derive(Debug, Default)]
pub struct BudgetStats {
    decisions: AtomicU64,
    local: AtomicU64,
    slices_taken: AtomicU64,
    slices_returned: AtomicU64,
    units_returned: AtomicU64,
    return_errors: AtomicU64,
}

impl BudgetStats {
    /// Decisions with at least one check under a local budget.
    pub fn decisions(&self) -> u64 {
        self.decisions.load(Ordering::Relaxed)
    }

    /// Of those, the decisions answered without asking the store.
    pub fn local(&self) -> u64 {
        self.local.load(Ordering::Relaxed)
    }

    /// Slices taken from the store (one store call may take several, for
    /// a request under several budgeted limits).
    pub fn slices_taken(&self) -> u64 {
        self.slices_taken.load(Ordering::Relaxed)
    }

    /// Slices whose unspent rest was given back to the store.
    pub fn slices_returned(&self) -> u64 {
        self.slices_returned.load(Ordering::Relaxed)
    }

    /// Units given back to the store, in all.
    pub fn units_returned(&self) -> u64 {
        self.units_returned.load(Ordering::Relaxed)
    }

    /// Returns that failed (the store could not be reached): their units
    /// are lost to the limit until its state moves on.
    pub fn return_errors(&self) -> u64 {
        self.return_errors.load(Ordering::Relaxed)
    }

    pub(super) fn decided(&self, local: bool, taken: u64) {
        self.decisions.fetch_add(1, Ordering::Relaxed);
        if local {
            self.local.fetch_add(1, Ordering::Relaxed);
        }
        if taken > 0 {
            self.slices_taken.fetch_add(taken, Ordering::Relaxed);
        }
    }

    pub(super) fn returned(&self, units: Option<u64>) {
        match units {
            Some(units) => {
                self.slices_returned.fetch_add(1, Ordering::Relaxed);
                self.units_returned.fetch_add(units, Ordering::Relaxed);
            }
            None => {
                self.return_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
