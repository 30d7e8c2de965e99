//! Sluice: rate limiting that decides atomically, in one step.
//!
//! A [`Limiter`] holds named [`Policy`]s and a [`Store`]. For every request
//! it asks the store to decide, in one atomic step, whether the request's
//! key may spend its cost under the policy's [`Quota`], and answers with a
//! [`Decision`]: allowed or not, what remains, and when to come back.
//!
//! The six algorithms are pure functions of `(state, quota, cost, now)` in
//! [`algorithm`], with time given as integer microseconds; every store
//! decides exactly as they do.
//!
//! # Layout
//!
//! - [`algorithm`]: the six algorithms, each a pure step, and their shared [`State`](algorithm::State).
//! - [`quota`]: [`Quota`] and [`Algorithm`], valid by construction.
//! - [`policy`]: [`Policy`], named [`Limit`]s (each a quota with per-key overrides) and shadow mode.
//! - [`overrides`]: [`Override`] (a key's own quota, `unlimited` or `block`), by exact key or
//!   pattern, and which applies when several match.
//! - [`on_store_error`]: [`OnStoreError`] (`allow`, `deny`, `local`), what a policy answers when
//!   the store fails, and [`LocalShare`].
//! - [`local_budget`]: [`LocalBudget`], a policy's opt-in to spend slices of a hot key's
//!   allowance locally.
//! - [`decision`]: [`Decision`], what a check answers, and which of several is the most restrictive.
//! - [`clock`]: [`Clock`], [`SystemClock`] and [`FakeClock`] for tests.
//! - [`duration`]: the one grammar durations are read and shown in (`250ms`, `1h30m`).
//! - [`store`]: the [`Store`] trait, [`Check`], [`BoxStore`] (any store as one type) and
//!   [`store::open`] (the store a URL names, `memory` or `redis://…`, chosen at run time);
//!   [`store::memory`] holds [`MemoryStore`],
//!   `store::redis` the `RedisStore` (feature `redis`, on by default) and its Lua scripts; the
//!   decorators for when the store fails ([`Resilient`](store::Resilient): a fallback, a deny
//!   cache and a circuit breaker).
//! - [`limiter`]: [`Limiter`], named policies over a store: [`Resolved`] requests in, a [`Verdict`] per policy out.
//! - [`summary`]: [`Summary`](summary::Summary), a key's stored state as a person reads it.
//! - [`error`]: [`Error`], [`StoreError`] and [`error::chain`] to log a cause whole.

pub mod algorithm;
pub mod clock;
pub mod decision;
pub mod duration;
pub mod error;
pub mod limiter;
pub mod local_budget;
pub mod on_store_error;
pub mod overrides;
pub mod policy;
pub mod quota;
pub mod store;
pub mod summary;

pub use clock::{Clock, FakeClock, SystemClock};
pub use decision::{Decision, Source, most_restrictive};
pub use error::{Error, StoreError};
pub use limiter::{Limiter, MAX_KEY_LEN, Resolved, Verdict};
pub use local_budget::LocalBudget;
pub use on_store_error::{LocalShare, OnStoreError};
pub use overrides::Override;
pub use policy::{Limit, Policy, PolicyError};
pub use quota::{Algorithm, Quota, QuotaError};
pub use store::memory::MemoryStore;
#[cfg(feature = "redis")]
pub use store::redis::{RedisOptions, RedisStore, TlsError, TlsOptions};
pub use store::{BoxStore, Check, Store};
