//! The six algorithms, each a pure step: `(state, quota, cost, now) ->
//! (decision, new state)`.
//!
//! A step does no I/O, takes no lock and reads no clock: `now` is whole
//! microseconds since the Unix epoch, given by the caller. A step returns
//! the state to store only when something changed (an admission of a
//! positive cost); a denial never changes the state, so a client that keeps
//! retrying cannot starve itself. A cost of zero decides nothing and reports
//! the key as it stands.
//!
//! Every store, in memory or in Redis, must decide exactly as these steps.
//!
//! # When a quota's numbers change
//!
//! A reload that changes a policy's limit, period or burst keeps what each
//! key has spent: [`carry`] brings a key's state to the new quota at its
//! first check (or peek) under it, before deciding. Each algorithm defines
//! its carry once, as a pure function of `(state, old quota, new quota,
//! now)`, rounding against the client; every store applies it (the Redis
//! store keeps each state with the quota numbers it was saved under). A
//! raised limit shows in `remaining` at once, a lowered one can leave the
//! key denied until its spend drains:
//!
//! - the buckets (token bucket, GCRA, leaky bucket) keep their *debt*: the
//!   tokens missing from a full bucket, which may exceed the new capacity
//!   (in whole tokens rounded up when the size of a token changes, at
//!   most [`MAX_DEBT`] scaled units). They are one meter, so
//!   a change from one bucket algorithm to another carries the debt too;
//! - the fixed window and the sliding window counter keep their counts
//!   (under another period, the count at `now` moves to the new window
//!   that holds `now`);
//! - the sliding window log keeps its entries as they are.
//!
//! Any other change of algorithm (between a bucket and a window, or
//! between two window algorithms) starts the key afresh: their states
//! measure different things, and no conversion is exact.
//!
//! # Adding an algorithm
//!
//! 1. A module here with its `State`, `decide` and `carry` (and `refund`,
//!    see the Redis store's `refund.lua`), documented like the others.
//! 2. A variant of [`Algorithm`] with its name in [`Algorithm::name`] and
//!    [`Algorithm::ALL`] (and whether it has a burst).
//! 3. A line in `algorithms!` below: it makes the [`Step`], the [`State`]
//!    variant and the dispatch.
//! 4. A line in `slots!` in the memory store's `entry.rs` (where the state
//!    sits beside the quota's fingerprint).
//! 5. A `.lua` file in the Redis store's `lua/` with the same step, an entry
//!    (`load`, `decide`, `save`) in the `algorithms` table (see `lua/prelude.lua`)
//!    and its carry in `lua/carry.lua`, at its code
//!    (its position in [`Algorithm::ALL`], from 1), its `refund` in
//!    `lua/refund.lua` and the refund's Rust model in `store/redis/refund.rs`;
//!    the file is listed in `store/redis/library.rs`, whose `stored` module
//!    reads its state back (`tests/inspect.rs` holds it to the memory store's);
//!    and its line in [`Summary`](crate::summary::Summary).
//! 6. Its reference model in `tests/common` (with its rule for a clock behind
//!    the state in `Model::counts_at`) and a row in the contract traces: the
//!    property and contract tests then hold every store to the step.

pub mod fixed_window;
pub mod gcra;
pub mod leaky_bucket;
pub mod sliding_window_counter;
pub mod sliding_window_log;
pub mod token_bucket;

use crate::{Algorithm, Decision, Quota};

/// One algorithm: its pure step and the state it keeps per key.
///
/// Every store decides through this trait, so an algorithm is defined once.
/// A step does no I/O, takes no lock and reads no clock.
pub trait Step {
    /// The algorithm this step decides.
    const ALGORITHM: Algorithm;
    /// What the step keeps per key.
    type State: Clone + std::fmt::Debug + PartialEq;

    /// Decides a request of `cost` at `now_us`; returns the state to store,
    /// `None` when nothing changes (a denial, or a cost of zero).
    fn decide(
        state: Option<&Self::State>,
        quota: &Quota,
        cost: u64,
        now_us: u64,
    ) -> (Decision, Option<Self::State>);

    /// [`Step::decide`] on a state where it lies, replacing it when the
    /// step writes; returns the decision and whether it wrote. The
    /// default replaces the state with the one `decide` returns; the
    /// sliding log, whose state grows with its limit, appends in place.
    #[inline(always)]
    fn decide_in_place(
        state: &mut Self::State,
        quota: &Quota,
        cost: u64,
        now_us: u64,
    ) -> (Decision, bool) {
        match Self::decide(Some(state), quota, cost, now_us) {
            (d, Some(next)) => {
                *state = next;
                (d, true)
            }
            (d, None) => (d, false),
        }
    }

    /// The decision [`Step::decide`] makes, alone: nothing is built for
    /// the state it would write. The default calls `decide`; the sliding
    /// log, whose next state is a copy of its log, decides without it (a
    /// peek reads the log and copies nothing).
    #[inline(always)]
    fn decision(state: Option<&Self::State>, quota: &Quota, cost: u64, now_us: u64) -> Decision {
        Self::decide(state, quota, cost, now_us).0
    }

    /// The state under `new` of a key that holds `state` under `old` at
    /// `now_us` (the same algorithm, other numbers): what the key has
    /// spent, carried over (see [`carry`]). `None`: the key is untouched.
    fn carry(state: &Self::State, old: &Quota, new: &Quota, now_us: u64) -> Option<Self::State>;

    /// This algorithm's state as a [`State`].
    fn wrap(state: Self::State) -> State;

    /// The state in `state` if it is this algorithm's.
    fn peel(state: &State) -> Option<&Self::State>;
}

/// Something to do with an algorithm's [`Step`], whichever it is: what
/// [`visit`] calls with the step of an [`Algorithm`].
pub(crate) trait Visitor {
    /// What the visit gives.
    type Output;
    /// Does it with step `A`.
    fn visit<A: Step>(self) -> Self::Output;
}

/// Declares every algorithm once: its [`Step`] (a unit struct whose
/// `decide` is the module's), its [`State`] variant, and its arm of
/// [`visit`], the one place that goes from an [`Algorithm`] to its step.
/// `= f, g` after a line names the module's own in-place step
/// ([`Step::decide_in_place`]) and decision alone ([`Step::decision`]).
macro_rules! algorithms {
    ($($variant:ident => $module:ident as $stored:ty $(= $in_place:ident, $decision:ident)?),* $(,)?) => {
        /// The stored state of one key, whichever its algorithm.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum State {
            $(
                #[doc = concat!("See [`", stringify!($module), "`].")]
                $variant($stored),
            )*
        }

        $(
            #[doc = concat!("The [`Step`] of [`", stringify!($module), "`].")]
            #[derive(Clone, Copy, Debug)]
            pub struct $variant;

            impl Step for $variant {
                const ALGORITHM: Algorithm = Algorithm::$variant;
                type State = $module::State;

                #[inline(always)]
                fn decide(
                    state: Option<&Self::State>,
                    quota: &Quota,
                    cost: u64,
                    now_us: u64,
                ) -> (Decision, Option<Self::State>) {
                    $module::decide(state, quota, cost, now_us)
                }

                $(
                    #[inline(always)]
                    fn decide_in_place(
                        state: &mut Self::State,
                        quota: &Quota,
                        cost: u64,
                        now_us: u64,
                    ) -> (Decision, bool) {
                        $module::$in_place(state, quota, cost, now_us)
                    }

                    #[inline(always)]
                    fn decision(
                        state: Option<&Self::State>,
                        quota: &Quota,
                        cost: u64,
                        now_us: u64,
                    ) -> Decision {
                        $module::$decision(state, quota, cost, now_us)
                    }
                )?

                fn carry(
                    state: &Self::State,
                    old: &Quota,
                    new: &Quota,
                    now_us: u64,
                ) -> Option<Self::State> {
                    $module::carry(state, old, new, now_us)
                }

                fn wrap(state: Self::State) -> State {
                    State::$variant(state.into())
                }

                fn peel(state: &State) -> Option<&Self::State> {
                    match state {
                        State::$variant(s) => Some(std::borrow::Borrow::borrow(s)),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }
        )*

        /// Calls `visitor` with the step of `algorithm`.
        #[inline(always)]
        pub(crate) fn visit<V: Visitor>(algorithm: Algorithm, visitor: V) -> V::Output {
            match algorithm {
                $(Algorithm::$variant => visitor.visit::<$variant>(),)*
            }
        }
    };
}

algorithms! {
    TokenBucket => token_bucket as token_bucket::State,
    Gcra => gcra as gcra::State,
    LeakyBucket => leaky_bucket as leaky_bucket::State,
    FixedWindow => fixed_window as fixed_window::State,
    // Boxed so that the log does not make every other state larger; decided
    // in place, so that an admission does not copy the log.
    SlidingWindowLog => sliding_window_log as Box<sliding_window_log::State> = decide_in_place, decision,
    SlidingWindowCounter => sliding_window_counter as sliding_window_counter::State,
}

/// Decides a request of `cost` at `now_us` by the quota's algorithm.
///
/// A `state` of another algorithm than the quota's is ignored (the key
/// starts afresh). Returns the state to store, `None` when nothing changes.
///
/// ```
/// use std::time::Duration;
/// use sluice::{algorithm, Algorithm, Quota};
///
/// let quota = Quota::new(Algorithm::TokenBucket, 2, Duration::from_secs(1), None).unwrap();
/// let (first, state) = algorithm::decide(None, &quota, 1, 0);
/// assert!(first.allowed && first.remaining == 1);
/// let (second, state) = algorithm::decide(state.as_ref(), &quota, 1, 0);
/// assert!(second.allowed && second.remaining == 0);
/// let (third, _) = algorithm::decide(state.as_ref(), &quota, 1, 0);
/// assert!(!third.allowed);
/// assert_eq!(third.retry_after, Some(Duration::from_millis(500)));
/// ```
pub fn decide(
    state: Option<&State>,
    quota: &Quota,
    cost: u64,
    now_us: u64,
) -> (Decision, Option<State>) {
    struct Decide<'a> {
        state: Option<&'a State>,
        quota: &'a Quota,
        cost: u64,
        now_us: u64,
    }
    impl Visitor for Decide<'_> {
        type Output = (Decision, Option<State>);
        fn visit<A: Step>(self) -> Self::Output {
            let state = self.state.and_then(A::peel);
            let (decision, next) = A::decide(state, self.quota, self.cost, self.now_us);
            (decision, next.map(A::wrap))
        }
    }
    let decide = Decide {
        state,
        quota,
        cost,
        now_us,
    };
    visit(quota.algorithm(), decide)
}

/// What a request of `cost` would be told at `now_us`, without consuming
/// anything: the decision of [`decide`], whose state is not kept. A cost
/// of 0 tells the key as it stands.
///
/// ```
/// use std::time::Duration;
/// use sluice::{algorithm, Algorithm, Quota};
///
/// let quota = Quota::new(Algorithm::FixedWindow, 3, Duration::from_secs(1), None).unwrap();
/// let (_, state) = algorithm::decide(None, &quota, 1, 0);
/// assert_eq!(algorithm::peek(state.as_ref(), &quota, 1, 0).remaining, 1);
/// assert_eq!(algorithm::peek(state.as_ref(), &quota, 0, 0).remaining, 2);
/// ```
pub fn peek(state: Option<&State>, quota: &Quota, cost: u64, now_us: u64) -> Decision {
    struct Peek<'a>(Option<&'a State>, &'a Quota, u64, u64);
    impl Visitor for Peek<'_> {
        type Output = Decision;
        fn visit<A: Step>(self) -> Decision {
            peek_step::<A>(self.0.and_then(A::peel), self.1, self.2, self.3)
        }
    }
    visit(quota.algorithm(), Peek(state, quota, cost, now_us))
}

/// [`peek`] on step `A`'s own state, where it lies: nothing is copied.
#[inline(always)]
pub(crate) fn peek_step<A: Step>(
    state: Option<&A::State>,
    quota: &Quota,
    cost: u64,
    now_us: u64,
) -> Decision {
    A::decision(state, quota, cost, now_us)
}

/// The most debt a bucket carries to a new quota, in its scaled units:
/// 2^51, at least twice any bucket's scaled capacity ([`MAX_SCALED`]), and
/// small enough that the Lua scripts compute every carry exactly.
///
/// [`MAX_SCALED`]: crate::quota::MAX_SCALED
pub const MAX_DEBT: u64 = 1 << 51;

/// The state under `new` of a key that holds `state` under `old` at
/// `now_us`: what the key has spent, carried over by the algorithm's own
/// [`Step::carry`] (see the module's docs). `None` when the key is
/// untouched under `new`, and when the algorithm changes other than from
/// one bucket to another (the key starts afresh). A state of another
/// algorithm than `old`'s is not the key's: `None` too.
///
/// ```
/// use std::time::Duration;
/// use sluice::{algorithm, Algorithm, Quota};
///
/// let day = Duration::from_secs(86_400);
/// let hundred = Quota::new(Algorithm::TokenBucket, 100, day, None).unwrap();
/// let fifty = Quota::new(Algorithm::TokenBucket, 50, day, None).unwrap();
/// // 100 spent of 100 a day; lowered to 50, then raised back to 100.
/// let (_, spent) = algorithm::decide(None, &hundred, 100, 0);
/// let lowered = algorithm::carry(&spent.unwrap(), &hundred, &fifty, 0).unwrap();
/// assert!(!algorithm::peek(Some(&lowered), &fifty, 1, 0).allowed);
/// let raised = algorithm::carry(&lowered, &fifty, &hundred, 0).unwrap();
/// assert_eq!(algorithm::peek(Some(&raised), &hundred, 0, 0).remaining, 0);
/// ```
pub fn carry(state: &State, old: &Quota, new: &Quota, now_us: u64) -> Option<State> {
    struct Same<'a> {
        state: &'a State,
        old: &'a Quota,
        new: &'a Quota,
        now_us: u64,
    }
    impl Visitor for Same<'_> {
        type Output = Option<State>;
        fn visit<A: Step>(self) -> Self::Output {
            let state = A::peel(self.state)?;
            A::carry(state, self.old, self.new, self.now_us).map(A::wrap)
        }
    }
    if old.algorithm() != new.algorithm() {
        // The buckets are one meter: their debt carries from one to another.
        let debt = match state {
            State::TokenBucket(s) if old.algorithm() == Algorithm::TokenBucket => {
                token_bucket::debt(s, old, now_us)
            }
            State::Gcra(s) if old.algorithm() == Algorithm::Gcra => gcra::debt(s, old, now_us),
            State::LeakyBucket(s) if old.algorithm() == Algorithm::LeakyBucket => {
                gcra::debt(s, old, now_us)
            }
            _ => return None,
        };
        let debt = carry_debt(debt, old, new);
        return match new.algorithm() {
            Algorithm::TokenBucket => {
                token_bucket::indebted(debt, new, now_us).map(State::TokenBucket)
            }
            Algorithm::Gcra => gcra::indebted(debt, new, now_us).map(State::Gcra),
            Algorithm::LeakyBucket => gcra::indebted(debt, new, now_us).map(State::LeakyBucket),
            _ => None,
        };
    }
    if old == new {
        return Some(state.clone());
    }
    let same = Same {
        state,
        old,
        new,
        now_us,
    };
    visit(new.algorithm(), same)
}

/// A bucket's debt of `debt` scaled units of `old` in scaled units of
/// `new`: unchanged when a token is the same number of scaled units in
/// both, else whole tokens rounded up (a fraction of a token of refill is
/// lost, never gained), and at most [`MAX_DEBT`] (whole tokens): a debt
/// beyond it (at least twice the new burst) is cut there.
pub(crate) fn carry_debt(debt: u128, old: &Quota, new: &Quota) -> u64 {
    let (unit, new_unit) = (old.scaled_unit(), new.scaled_unit());
    let most = MAX_DEBT / new_unit * new_unit;
    if debt > u128::from(MAX_DEBT) {
        return most;
    }
    let carried = if unit == new_unit {
        debt
    } else {
        debt.div_ceil(u128::from(unit)) * u128::from(new_unit)
    };
    carried.min(u128::from(most)) as u64
}
