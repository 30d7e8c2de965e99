//! [`Breaker`]: a circuit breaker in front of a store, on the [`Clock`].
//!
//! While the store answers, every call goes through (closed). After
//! [`BreakerOptions::failures`] transient failures in a row it opens: for
//! [`BreakerOptions::open_for`] every call fails at once with
//! [`StoreError::CircuitOpen`], without waiting out the store's timeout, so
//! that the [`Fallback`](super::Fallback) above answers by each policy's
//! mode within microseconds. Then the first call is let through as a probe
//! (half-open; the others still fail at once): its success closes the
//! breaker, its failure opens it again for another period.
//!
//! Only transient errors (unreachable, timed out) count as failures: a
//! store that answers something unexpected is up, and holding it off would
//! not help. Each transition is logged once, with its cause.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{Check, Store};
use crate::clock::{Clock, SystemClock};
use crate::{Decision, StoreError};

/// When a [`Breaker`] opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerOptions {
    /// Transient failures in a row that open the breaker. Default 5: a
    /// single lost packet or restart does not open it, and at a few hundred
    /// requests per second an outage opens it within milliseconds.
    pub failures: u32,
    /// How long the breaker stays open before it lets a probe through.
    /// Default 500 ms: the longest the limiter keeps answering by the
    /// fallback after the store is back is this plus one probe's round
    /// trip, so exact limits return within a second of the store; and an
    /// unreachable store is still tried only twice a second.
    pub open_for: Duration,
}

impl Default for BreakerOptions {
    fn default() -> Self {
        BreakerOptions {
            failures: 5,
            open_for: Duration::from_millis(500),
        }
    }
}

impl BreakerOptions {
    /// These options with `failures` in a row to open (at least 1).
    pub fn with_failures(mut self, failures: u32) -> Self {
        self.failures = failures.max(1);
        self
    }

    /// These options, staying open for `open_for` before a probe.
    pub fn with_open_for(mut self, open_for: Duration) -> Self {
        self.open_for = open_for;
        self
    }
}

/// Where a [`Breaker`] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go through to the store.
    Closed,
    /// Calls fail at once, without reaching the store.
    Open,
    /// One probe is on its way to the store; other calls fail at once.
    HalfOpen,
}

impl BreakerState {
    /// The name metrics and `/readyz` use: `closed`, `open` or `half_open`.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// The breaker's state as it changes.
#[derive(Clone, Copy, Debug)]
enum State {
    Closed { failures: u32 },
    Open { until_us: u64 },
    HalfOpen,
}

/// What a breaker shares with the [`Health`](super::Health) handle: its
/// state and the store's errors counted by kind.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// `(kind, count)`; a handful of kinds, so a list beats a map.
    errors: Mutex<Vec<(&'static str, u64)>>,
}

impl Shared {
    pub(crate) fn state(&self) -> BreakerState {
        match *self.state.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen => BreakerState::HalfOpen,
        }
    }

    pub(crate) fn errors(&self) -> Vec<(&'static str, u64)> {
        self.errors.lock().clone()
    }

    fn count_error(&self, error: &StoreError) {
        let kind = error.kind();
        let mut errors = self.errors.lock();
        match errors.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => errors.push((kind, 1)),
        }
    }
}

/// A circuit breaker around store `S`: see [the module docs](self).
///
/// ```
/// use std::time::Duration;
/// use sluice::store::{Breaker, BreakerOptions, BreakerState};
/// use sluice::{FakeClock, MemoryStore};
///
/// let breaker = Breaker::new(MemoryStore::new(), FakeClock::new(0), BreakerOptions::default());
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// ```
pub struct Breaker<S, C = SystemClock> {
    inner: S,
    clock: C,
    options: BreakerOptions,
    shared: Arc<Shared>,
}

/// Whether a call may go to the store, and as what.
enum Permit<'a> {
    /// The breaker is closed.
    Call,
    /// The breaker lets this call through as its one probe.
    Probe(ProbeGuard<'a>),
}

/// The probe's permit: a probe that never reports (its future was dropped)
/// would leave the breaker half-open for ever, so dropping it unreported
/// lets the next call probe instead.
struct ProbeGuard<'a> {
    state: &'a Mutex<State>,
    now_us: u64,
    armed: bool,
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.state.lock();
            if matches!(*state, State::HalfOpen) {
                *state = State::Open {
                    until_us: self.now_us,
                };
            }
        }
    }
}

impl<S: Store, C: Clock> Breaker<S, C> {
    /// A closed breaker around `inner`, timed by `clock`.
    pub fn new(inner: S, clock: C, options: BreakerOptions) -> Breaker<S, C> {
        Breaker {
            inner,
            clock,
            options,
            shared: Arc::new(Shared {
                state: Mutex::new(State::Closed { failures: 0 }),
                errors: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Where the breaker stands now.
    pub fn state(&self) -> BreakerState {
        self.shared.state()
    }

    /// The store inside.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// Runs `call` on the store if the breaker lets it, and counts its result.
    async fn guard<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let permit = self.admit()?;
        let result = call.await;
        if let Err(e) = &result {
            self.shared.count_error(e);
        }
        self.record(result.as_ref().err(), permit);
        result
    }

    /// Lets a call through, or fails it at once while the breaker is open.
    fn admit(&self) -> Result<Permit<'_>, StoreError> {
        let now_us = self.clock.now_us();
        let mut state = self.shared.state.lock();
        match *state {
            State::Closed { .. } => Ok(Permit::Call),
            State::Open { until_us } if now_us >= until_us => {
                *state = State::HalfOpen;
                tracing::info!("circuit breaker half-open: probing the store");
                Ok(Permit::Probe(ProbeGuard {
                    state: &self.shared.state,
                    now_us,
                    armed: true,
                }))
            }
            State::Open { .. } | State::HalfOpen => Err(StoreError::CircuitOpen),
        }
    }

    /// Moves the breaker on after a call that failed with `error` (`None`:
    /// the store answered).
    fn record(&self, error: Option<&StoreError>, permit: Permit<'_>) {
        let failed = error.filter(|e| e.is_transient());
        let mut state = self.shared.state.lock();
        match (permit, failed) {
            (Permit::Probe(mut guard), None) => {
                guard.armed = false;
                *state = State::Closed { failures: 0 };
                tracing::info!("circuit breaker closed: the probe succeeded");
            }
            (Permit::Probe(mut guard), Some(e)) => {
                guard.armed = false;
                *state = self.open_state();
                tracing::warn!(
                    cause = %crate::error::chain(e),
                    open_for = ?self.options.open_for,
                    "circuit breaker open again: the probe failed"
                );
            }
            (Permit::Call, None) => {
                // A call let through before the breaker opened does not
                // close it: only its probe does.
                if let State::Closed { failures } = &mut *state {
                    *failures = 0;
                }
            }
            (Permit::Call, Some(e)) => {
                if let State::Closed { failures } = &mut *state {
                    *failures += 1;
                    if *failures >= self.options.failures {
                        let failures = *failures;
                        *state = self.open_state();
                        tracing::warn!(
                            failures,
                            cause = %crate::error::chain(e),
                            open_for = ?self.options.open_for,
                            "circuit breaker open: the store failed repeatedly"
                        );
                    }
                }
            }
        }
    }

    fn open_state(&self) -> State {
        let open_us = u64::try_from(self.options.open_for.as_micros()).unwrap_or(u64::MAX);
        State::Open {
            until_us: self.clock.now_us().saturating_add(open_us),
        }
    }
}

impl<S: Store, C: Clock> Store for Breaker<S, C> {
    async fn decide(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
        self.guard(self.inner.decide(checks)).await
    }

    async fn decide_one(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        self.guard(self.inner.decide_one(check)).await
    }

    async fn peek(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        self.guard(self.inner.peek(check)).await
    }

    async fn reset(&self, check: &Check<'_>) -> Result<(), StoreError> {
        self.guard(self.inner.reset(check)).await
    }

    async fn inspect(
        &self,
        check: &Check<'_>,
    ) -> Result<Option<crate::algorithm::State>, StoreError> {
        self.guard(self.inner.inspect(check)).await
    }

    /// Fails at once while open; otherwise pings the store, and counts as
    /// the probe when one is due (so a readiness check also closes it).
    async fn ping(&self) -> Result<(), StoreError> {
        self.guard(self.inner.ping()).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;
    use crate::{Algorithm, FakeClock, MemoryStore, Quota};

    /// A memory store that fails with `Unavailable` while `down`, and
    /// counts the calls that reach it.
    #[derive(Default)]
    struct Flaky {
        store: MemoryStore,
        down: AtomicBool,
        calls: AtomicUsize,
    }

    impl Flaky {
        fn fail(&self) -> Result<(), StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("connection refused".into()));
            }
            Ok(())
        }
    }

    impl Store for Flaky {
        async fn decide(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
            self.fail()?;
            self.store.decide(checks).await
        }
        async fn peek(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
            self.fail()?;
            self.store.peek(check).await
        }
        async fn reset(&self, check: &Check<'_>) -> Result<(), StoreError> {
            self.fail()?;
            self.store.reset(check).await
        }
        async fn ping(&self) -> Result<(), StoreError> {
            self.fail()
        }
    }

    fn quota() -> Quota {
        Quota::new(Algorithm::FixedWindow, 100, Duration::from_secs(60), None).unwrap()
    }

    fn setup() -> (Breaker<Arc<Flaky>, FakeClock>, Arc<Flaky>, FakeClock) {
        let flaky = Arc::new(Flaky::default());
        let clock = FakeClock::new(1_000_000);
        let options = BreakerOptions::default()
            .with_failures(3)
            .with_open_for(Duration::from_secs(2));
        let breaker = Breaker::new(Arc::clone(&flaky), clock.clone(), options);
        (breaker, flaky, clock)
    }

    #[tokio::test]
    async fn opens_after_consecutive_failures_and_then_spares_the_store() {
        let (breaker, flaky, _clock) = setup();
        let q = quota();
        let check = Check::new("api", "k", &q, 1);
        flaky.down.store(true, Ordering::SeqCst);
        for _ in 0..2 {
            assert!(matches!(
                breaker.decide_one(&check).await,
                Err(StoreError::Unavailable(_))
            ));
            assert_eq!(breaker.state(), BreakerState::Closed);
        }
        assert!(matches!(
            breaker.decide_one(&check).await,
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(breaker.state(), BreakerState::Open);
        for _ in 0..10 {
            assert!(matches!(
                breaker.decide_one(&check).await,
                Err(StoreError::CircuitOpen)
            ));
            assert!(matches!(breaker.ping().await, Err(StoreError::CircuitOpen)));
        }
        assert_eq!(
            flaky.calls.load(Ordering::SeqCst),
            3,
            "nothing reached the store while open"
        );
        assert_eq!(breaker.shared.errors(), [("unavailable", 3)]);
    }

    #[tokio::test]
    async fn a_success_between_failures_starts_the_count_again() {
        let (breaker, flaky, _clock) = setup();
        let q = quota();
        let check = Check::new("api", "k", &q, 1);
        for _ in 0..3 {
            flaky.down.store(true, Ordering::SeqCst);
            breaker.decide_one(&check).await.unwrap_err();
            breaker.decide_one(&check).await.unwrap_err();
            flaky.down.store(false, Ordering::SeqCst);
            breaker.decide_one(&check).await.unwrap();
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test]
    async fn after_the_open_period_one_probe_closes_it_or_opens_it_again() {
        let (breaker, flaky, clock) = setup();
        let q = quota();
        let check = Check::new("api", "k", &q, 1);
        flaky.down.store(true, Ordering::SeqCst);
        for _ in 0..3 {
            breaker.decide_one(&check).await.unwrap_err();
        }
        clock.advance(Duration::from_millis(1_999));
        assert!(matches!(
            breaker.decide_one(&check).await,
            Err(StoreError::CircuitOpen)
        ));
        clock.advance(Duration::from_millis(1));
        // The probe fails: open for another full period.
        assert!(matches!(
            breaker.decide_one(&check).await,
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(breaker.state(), BreakerState::Open);
        clock.advance(Duration::from_millis(1_999));
        assert!(matches!(
            breaker.decide_one(&check).await,
            Err(StoreError::CircuitOpen)
        ));
        clock.advance(Duration::from_millis(1));
        flaky.down.store(false, Ordering::SeqCst);
        let calls = flaky.calls.load(Ordering::SeqCst);
        assert!(
            breaker.decide_one(&check).await.unwrap().allowed,
            "the probe"
        );
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(breaker.decide_one(&check).await.unwrap().allowed);
        assert_eq!(flaky.calls.load(Ordering::SeqCst), calls + 2);
    }

    #[tokio::test]
    async fn while_a_probe_is_out_the_other_calls_fail_at_once() {
        let (breaker, flaky, clock) = setup();
        let q = quota();
        let check = Check::new("api", "k", &q, 1);
        flaky.down.store(true, Ordering::SeqCst);
        for _ in 0..3 {
            breaker.decide_one(&check).await.unwrap_err();
        }
        clock.advance(Duration::from_secs(2));
        let Ok(Permit::Probe(guard)) = breaker.admit() else {
            panic!("the first call after the period is the probe");
        };
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        assert!(matches!(
            breaker.decide_one(&check).await,
            Err(StoreError::CircuitOpen)
        ));
        // The probe's caller went away: the next call probes instead.
        drop(guard);
        flaky.down.store(false, Ordering::SeqCst);
        assert!(breaker.decide_one(&check).await.unwrap().allowed);
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test]
    async fn an_unexpected_answer_is_not_a_failure() {
        let (breaker, _flaky, _clock) = setup();
        let q = quota();
        let check = Check::new("api", "k", &q, 1);
        for _ in 0..5 {
            // Named twice: refused by the store, which did answer.
            breaker.decide(&[check, check]).await.unwrap_err();
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.shared.errors(), [("duplicate_check", 5)]);
    }
}
