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
//! - [`policy`]: [`Policy`], a named quota with shadow mode and per-key overrides.
//! - [`decision`]: [`Decision`], what a check answers.
//! - [`clock`]: [`Clock`], [`SystemClock`] and [`FakeClock`] for tests.
//! - [`store`]: the [`Store`] trait and [`Check`]; [`store::memory`] holds [`MemoryStore`],
//!   [`store::redis`] the `RedisStore` (feature `redis`, on by default) and its Lua scripts.
//! - [`limiter`]: [`Limiter`], named policies over a store.
//! - [`error`]: [`Error`] and [`StoreError`].

pub mod algorithm;
pub mod clock;
pub mod decision;
pub mod error;
pub mod limiter;
pub mod policy;
pub mod quota;
pub mod store;

pub use clock::{Clock, FakeClock, SystemClock};
pub use decision::Decision;
pub use error::{Error, StoreError};
pub use limiter::{Limiter, MAX_KEY_LEN};
pub use policy::{InvalidPolicyName, Policy};
pub use quota::{Algorithm, Quota, QuotaError};
pub use store::memory::MemoryStore;
#[cfg(feature = "redis")]
pub use store::redis::{RedisOptions, RedisStore};
pub use store::{Check, Store};
