//! The Redis store: every decision is made inside Redis by one Lua script,
//! atomically and in one round trip, so any number of servers share a limit.
//!
//! - **One key per limit.** A string of packed numbers (level and time,
//!   window and count, …) or, for the sliding log, a sorted set, with an
//!   expiry at the moment the key is back to its untouched state: idle keys
//!   cost no memory.
//! - **Time** comes from Redis `TIME` unless a clock is given
//!   ([`RedisStore::with_clock`]); the tests drive the scripts with a fake one.
//! - **Connections** are multiplexed: concurrent decisions are pipelined on
//!   one connection instead of queueing one round trip at a time. A task
//!   keeps the connection to a single Redis open: a loss is noticed when
//!   it happens and the connection opened again with backoff, so the first
//!   request after a Redis restart succeeds; [`RedisStore::open`] makes a
//!   store while Redis is down. A script missing after a restart or
//!   `SCRIPT FLUSH` is loaded again transparently.
//! - **Bounded latency**: every decision is answered within
//!   [`RedisOptions::timeout`] of its arrival, queueing included, and a
//!   decision answered as failed charges nothing (`batch` says how),
//!   except when a cluster's client stalls re-mapping slots after a master
//!   died (docs/RELIABILITY.md).
//! - **Batching**: decisions waiting at the same moment share calls; on
//!   Redis Cluster, per slot (`batch` says how), so a node that hangs or
//!   dies fails only its slots' decisions. [`RedisOptions::batching`]
//!   turns it off.
//! - **All or nothing.** Several checks in one [`Store::decide`] call are
//!   one script call on a single Redis, which charges every limit or none.
//!   On Redis Cluster the checks are grouped by hash tag (a client's key):
//!   all the policies of one client are one atomic call. Checks on
//!   different clients' keys may live in different slots: each slot's group
//!   is charged atomically, and when a group denies, the groups already
//!   charged are refunded by a second call. Between the charge and the
//!   refund (one round trip) another request may see the charged state, so
//!   it may be denied where it would have been admitted. A denied request
//!   consumes nothing once the call returns, and a refund gives back no
//!   more than its charge, to where the charge went
//!   ([`library::Mode::Refund`] says exactly what, and the rare cases,
//!   such as a failover in between, where it cannot tell).
//! - **Keys**: `{prefix}:{<key>}:<policy>`, where `<key>` is the client's
//!   key with `%`, `{` and `}` percent-encoded (so the braces make it the
//!   cluster hash tag, and no key can choose another's slot). The policy
//!   is percent-encoded the same way. The key does not depend on the
//!   quota: a packed state opens with the quota numbers it was saved under,
//!   and a check under changed numbers (a reload) first carries the state
//!   over to them ([`algorithm::carry`](crate::algorithm::carry), mirrored
//!   in `lua/carry.lua`), so the key keeps what it has spent. (Before
//!   this layout the key ended in `:<fingerprint>` of the quota; such keys
//!   are no longer read and expire on their own.)
//!
//! # Layout
//!
//! - `mod.rs`: [`RedisStore`] and [`RedisOptions`], the [`Store`] methods.
//! - [`library`]: the Lua library and its calling protocol (public, for
//!   tools that call it directly).
//! - `connection`: a single Redis, a Sentinel's master or a cluster, TLS,
//!   the time limit, errors.
//! - `link`: a connection opened, and kept open, by a task.
//! - `call`: running the library (function or script) on checks.
//! - `batch`: concurrent decisions packed into one call (per slot on a
//!   cluster).
//! - `cluster`: checks over several slots, and refunds.
//! - `reply`: the library's reply as decisions.
//! - `refund` (tests only): `lua/refund.lua` held to its Rust model,
//!   [`store::refund`](crate::store::refund).
//! - `keys`: the key layout above.

mod batch;
mod call;
mod cluster;
mod connection;
mod keys;
pub mod library;
mod link;
#[cfg(test)]
mod refund;
mod reply;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::store::{Check, Store, ensure_distinct};
use crate::{Decision, StoreError};
use batch::Batcher;
pub use batch::QueueFull;
use call::{Caller, Form};
use connection::Connection;
use library::Mode;

pub use connection::tls::{TlsError, TlsOptions};

/// How the Redis store connects and names its keys.
///
/// ```
/// use std::time::Duration;
/// use sluice::RedisOptions;
///
/// let options = RedisOptions::default()
///     .with_prefix("my-app")
///     .with_timeout(Duration::from_millis(50));
/// assert_eq!(options.prefix, "my-app");
/// assert_eq!(RedisOptions::default().timeout, Duration::from_millis(250));
/// assert!(options.functions);
/// assert!(!options.with_batching(false).batching);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisOptions {
    /// Prepended to every key (a namespace), without braces; default `sluice`.
    pub prefix: String,
    /// The most a decision may wait, from its arrival (queueing, connecting
    /// and the Redis call included), before it fails with
    /// [`StoreError::Timeout`]; peeks, resets and pings have the same
    /// limit. Must be above zero (the constructors refuse zero).
    ///
    /// The default, 250 ms, weighs two things. A rate limiter sits on every
    /// request's path, so its wait must be short beside a request's budget
    /// (usually a second or more): a quarter of a second at most, and only
    /// when Redis is in trouble. And a healthy Redis must never trip it: a
    /// decision takes it microseconds, a round trip on a LAN well under a
    /// millisecond, a call of 128 batched decisions about a millisecond
    /// (under load a decision waits for the calls ahead of it), and its
    /// rare stalls (a fork for a snapshot of a few GB, a slow command of
    /// another client) last tens of milliseconds. 250 ms leaves a margin of
    /// ten or more over those. An attempt to connect, in the background,
    /// may take up to 1 s or this timeout if longer.
    pub timeout: Duration,
    /// Whether to run the decisions as a Redis Function (Redis 7+; about
    /// half the cost of a script), falling back to `EVALSHA` where Redis
    /// has no functions or refuses `FUNCTION LOAD`; default true. False
    /// uses `EVALSHA` only (for proxies that pass scripts but not functions).
    pub functions: bool,
    /// Whether to decide with the native Sluice module's `SLUICE.CALL`
    /// when the Redis has it loaded (`crates/sluice-redis-module`; the
    /// same keys and answers as the Lua library, at a fraction of its
    /// cost), asked at the first call and again after a reconnect;
    /// default true. Where Redis has no such command (managed Redis that
    /// forbid modules) the store uses [`functions`](Self::functions) or
    /// `EVALSHA` as before. False never sends it.
    pub module: bool,
    /// The certificates of a `rediss://` connection beyond the defaults (a
    /// CA, a client certificate); default none: the public roots.
    pub tls: Option<TlsOptions>,
    /// Whether concurrent decisions are packed into shared calls (on a
    /// cluster, per slot); default true. False makes one call per
    /// decision (per slot of a decision on a cluster), each within the
    /// timeout: for measuring what batching saves.
    pub batching: bool,
}

impl RedisOptions {
    /// The same options with key prefix `prefix`.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> RedisOptions {
        self.prefix = prefix.into();
        self
    }

    /// The same options with call timeout `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> RedisOptions {
        self.timeout = timeout;
        self
    }

    /// The same options, running the decisions as a Redis Function when
    /// `functions` (else by `EVALSHA` only).
    pub fn with_functions(mut self, functions: bool) -> RedisOptions {
        self.functions = functions;
        self
    }

    /// The same options, deciding with the native module when Redis has it
    /// if `module` (else with the Lua library only).
    pub fn with_module(mut self, module: bool) -> RedisOptions {
        self.module = module;
        self
    }

    /// The same options, packing concurrent decisions into shared calls
    /// when `batching` (else one call per decision).
    pub fn with_batching(mut self, batching: bool) -> RedisOptions {
        self.batching = batching;
        self
    }

    /// The same options, connecting to a `rediss://` URL with `tls`'s
    /// certificates.
    pub fn with_tls(mut self, tls: TlsOptions) -> RedisOptions {
        self.tls = Some(tls);
        self
    }
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: "sluice".to_owned(),
            timeout: Duration::from_millis(250),
            functions: true,
            module: true,
            tls: None,
            batching: true,
        }
    }
}

/// Limiter state in Redis or Redis Cluster.
///
/// Cloning is cheap: clones share the multiplexed connection.
#[derive(Clone)]
pub struct RedisStore {
    caller: Caller,
    /// Packs concurrent decisions into shared calls (on a cluster, one per
    /// slot: one call's keys must share a slot); none without batching.
    batcher: Option<Batcher>,
}

impl RedisStore {
    /// Connects with the default options to `redis://[user:password@]host[:port][/db]`,
    /// `rediss://…` (TLS; [`RedisOptions::tls`] for a CA or a client
    /// certificate), `redis+cluster://[user:password@]host:port[,host:port…]`
    /// or `redis+sentinel://[user:password@]host:port[,host:port…]/master[/db]`
    /// (the master the Sentinels name, followed through failovers; the
    /// credentials are the master's, the Sentinels are asked without).
    pub async fn connect(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::connect_with(url, RedisOptions::default()).await
    }

    /// Connects to `url` (see [`RedisStore::connect`]) with `options`.
    /// Fails when the first attempt to connect does, or on invalid options
    /// (a prefix with braces, a zero timeout).
    pub async fn connect_with(url: &str, options: RedisOptions) -> Result<RedisStore, StoreError> {
        RedisStore::make(url, options, true).await
    }

    /// Makes a store on `url` (see [`RedisStore::connect`]) with `options`
    /// at once, connecting in the background: until it is connected,
    /// decisions and [`ping`](RedisStore::ping) fail with a transient error
    /// (after one more attempt to connect, so a Redis that just came up is
    /// used at once). Fails only on a URL that cannot be parsed or invalid
    /// options. Must be called on a tokio runtime.
    ///
    /// For a service that must start while Redis is not up yet: it starts
    /// unready, and is ready as soon as Redis is.
    pub async fn open(url: &str, options: RedisOptions) -> Result<RedisStore, StoreError> {
        RedisStore::make(url, options, false).await
    }

    async fn make(url: &str, options: RedisOptions, wait: bool) -> Result<RedisStore, StoreError> {
        if options.prefix.contains(['{', '}']) {
            return Err(StoreError::Protocol(format!(
                "the key prefix {:?} must not contain braces (they choose the cluster slot)",
                options.prefix
            )));
        }
        if options.timeout.is_zero() {
            return Err(StoreError::Protocol(
                "the timeout must be above zero".to_owned(),
            ));
        }
        let connection = Connection::open(url, options.timeout, options.tls.as_ref(), wait).await?;
        let form = Arc::new(Form::new(options.module, options.functions));
        let batcher = options
            .batching
            .then(|| Batcher::start(connection.clone(), Arc::clone(&form), options.timeout));
        Ok(RedisStore {
            caller: Caller {
                connection,
                form,
                timeout: options.timeout,
                clock: None,
                prefix: options.prefix,
            },
            batcher,
        })
    }

    /// Decides with the time from `clock` instead of Redis `TIME`. For
    /// tests, which drive time by hand.
    pub fn with_clock(mut self, clock: impl Clock) -> RedisStore {
        self.caller.clock = Some(Arc::new(clock));
        self
    }

    /// Which form of the decision library the last call ran: `module`
    /// (the native `SLUICE.CALL`), `function` or `script` (`EVALSHA`);
    /// before the first call, the one it will try after the module.
    pub fn library_form(&self) -> &'static str {
        self.caller.form.describe()
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.caller.query(&redis::cmd("PING")).await
    }
}

impl RedisStore {
    /// [`Store::decide`], also telling when each decision was made (see
    /// [`DecidedAt`]): what a charge must name to be given back
    /// ([`RedisStore::refund`]).
    pub(crate) async fn decide_at(
        &self,
        checks: &[Check<'_>],
    ) -> Result<(DecidedAt, Vec<Decision>), StoreError> {
        let arrived = tokio::time::Instant::now();
        ensure_distinct(checks)?;
        let batcher = self.batcher.as_ref();
        match checks {
            [] => Ok((DecidedAt::Never, Vec::new())),
            // A cluster: checks in several slots are grouped per slot.
            // Boxed, as the unbatched call in `decide_slot`: its future is
            // kilobytes, which every decision's future would carry.
            [_, _, ..] if self.caller.connection.is_cluster() => {
                let grouped: Pin<Box<dyn Future<Output = _> + Send + '_>> = Box::pin(
                    cluster::decide_grouped(&self.caller, batcher, arrived, checks),
                );
                let (at, decisions) = grouped.await?;
                Ok((DecidedAt::PerCheck(at), decisions))
            }
            // One call: through the batcher (answered within the timeout
            // of its arrival), or alone.
            _ => {
                let (at, decisions) =
                    cluster::decide_slot(&self.caller, batcher, arrived, checks).await?;
                Ok((DecidedAt::Once(at), decisions))
            }
        }
    }

    /// Gives back `check.cost`, charged by a decision made at `at_us`
    /// ([`Mode::Refund`] says exactly what it leaves).
    pub(crate) async fn refund(&self, check: &Check<'_>, at_us: u64) -> Result<(), StoreError> {
        let checks = std::slice::from_ref(check);
        self.caller.run(checks, Mode::Refund { at_us }).await?;
        Ok(())
    }
}

/// When the decisions of one [`RedisStore::decide_at`] were made, in µs
/// by the clock the library used (Redis's, or the caller's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum DecidedAt {
    /// Nothing was asked.
    #[default]
    Never,
    /// One call decided every check.
    Once(u64),
    /// Each check by its own slot's call (a cluster, checks in several
    /// slots); `None` for a check that only got its standing.
    PerCheck(Vec<Option<u64>>),
}

impl DecidedAt {
    /// When the `i`th check was decided.
    pub(crate) fn of(&self, i: usize) -> Option<u64> {
        match self {
            DecidedAt::Never => None,
            DecidedAt::Once(at) => Some(*at),
            DecidedAt::PerCheck(each) => each.get(i).copied().flatten(),
        }
    }
}

impl Store for RedisStore {
    async fn decide(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>, StoreError> {
        Ok(self.decide_at(checks).await?.1)
    }

    async fn peek(&self, check: &Check<'_>) -> Result<Decision, StoreError> {
        let (_, mut decisions) = self
            .caller
            .run(std::slice::from_ref(check), Mode::Peek)
            .await?;
        decisions
            .pop()
            .ok_or_else(|| StoreError::Protocol("no decision for the check".into()))
    }

    async fn reset(&self, check: &Check<'_>) -> Result<(), StoreError> {
        self.caller
            .query(redis::cmd("DEL").arg(self.caller.key_of(check)))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        RedisStore::ping(self).await
    }

    /// Reads the key with `TYPE` and then `GET` (a packed state) or
    /// `ZRANGE` (a log), each routed by the key, so the same on a cluster;
    /// decoded by [`library::stored`]. A value Sluice did not write is an
    /// error naming the key. The log is read whole.
    async fn inspect(
        &self,
        check: &Check<'_>,
    ) -> Result<Option<crate::algorithm::State>, StoreError> {
        let key = self.caller.key_of(check);
        let foreign = |problem: String| StoreError::Key {
            policy: check.policy.to_owned(),
            key: check.key.to_owned(),
            problem: format!("Redis key {key:?} {problem}"),
        };
        let kind: String = self.caller.query_as(redis::cmd("TYPE").arg(&key)).await?;
        let decoded = match kind.as_str() {
            "none" => return Ok(None),
            "string" => {
                let raw: Option<Vec<u8>> =
                    self.caller.query_as(redis::cmd("GET").arg(&key)).await?;
                match raw {
                    None => return Ok(None),
                    Some(raw) => library::stored::packed(&raw),
                }
            }
            "zset" => {
                let members: Vec<String> = self
                    .caller
                    .query_as(redis::cmd("ZRANGE").arg(&key).arg(0).arg(-1))
                    .await?;
                library::stored::log(&members)
            }
            other => Err(format!("is a Redis {other}, which Sluice never writes")),
        };
        decoded.map(Some).map_err(foreign)
    }
}
