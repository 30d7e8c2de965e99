//! Calling the library: checks as the library takes them, in the form this
//! Redis runs (the native module's command when loaded, else a function,
//! else a script), loaded again when Redis lost it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::{Cmd, RedisError, RedisResult};

use super::connection::{Connection, within};
#[cfg(test)]
use super::library::REPLY_PER_CHECK;
use super::library::{self, BYTES_REPLY, Mode, VALUES_PER_CHECK};
use super::{keys, reply};
use crate::clock::Clock;
use crate::store::Check;
use crate::{Decision, StoreError};

/// The checks of one all-or-nothing group, as the library takes them: a
/// key and [`VALUES_PER_CHECK`] packed values per check.
#[derive(Debug, Default)]
pub struct Group {
    /// The state key of each check.
    pub keys: Vec<String>,
    /// The values of each check, in order, packed by [`library::pack`].
    pub values: Vec<u8>,
}

impl Group {
    /// Adds a check on `key` with `values`.
    pub fn push(&mut self, key: String, values: [u64; VALUES_PER_CHECK]) {
        self.keys.push(key);
        library::pack(&values, &mut self.values);
    }
}

/// Which form of the library this Redis runs: the native module's
/// `SLUICE.CALL` (`crates/sluice-redis-module`) when Redis has it; else
/// the function until Redis shows it cannot (no `FCALL`, or `FUNCTION
/// LOAD` refused), then the script.
#[derive(Debug)]
pub struct Form {
    functions: AtomicBool,
    /// Whether to use the module when Redis has it.
    module: bool,
    /// The connection (by [`Connection::opened`]) on which Redis last
    /// answered that it has no such command, plus 1 (0: none did): the
    /// module is asked for again after a reconnect, maybe to a Redis that
    /// has it.
    module_missing_on: AtomicU64,
    /// Whether the module answered since it was last found missing (for
    /// the log line that says which form decides).
    module_seen: AtomicBool,
    /// As `module_missing_on`, for the module's bytes reply: the
    /// connection on which the module refused it (a module older than
    /// that form), plus 1.
    bytes_refused_on: AtomicU64,
}

impl Form {
    /// The module first when `module`, then functions when `functions`,
    /// else scripts only.
    pub fn new(module: bool, functions: bool) -> Form {
        Form {
            functions: AtomicBool::new(functions),
            module,
            module_missing_on: AtomicU64::new(0),
            module_seen: AtomicBool::new(false),
            bytes_refused_on: AtomicU64::new(0),
        }
    }

    /// Whether to try the module on `connection`.
    fn try_module(&self, connection: &Connection) -> bool {
        self.module && self.module_missing_on.load(Ordering::Relaxed) != connection.opened() + 1
    }

    /// Whether to ask for the bytes reply on `connection`.
    fn try_bytes(&self, connection: &Connection) -> bool {
        self.bytes_refused_on.load(Ordering::Relaxed) != connection.opened() + 1
    }

    fn bytes_refused(&self, connection: &Connection) {
        let was = self
            .bytes_refused_on
            .swap(connection.opened() + 1, Ordering::Relaxed);
        if was != connection.opened() + 1 {
            tracing::info!(
                "this Redis's Sluice module answers no bytes reply (an older version): \
                 it answers arrays"
            );
        }
    }

    fn module_answered(&self) {
        if !self.module_seen.swap(true, Ordering::Relaxed) {
            tracing::info!("Redis decides with the native Sluice module ({MODULE_COMMAND})");
        }
    }

    fn module_missing(&self, connection: &Connection) {
        self.module_missing_on
            .store(connection.opened() + 1, Ordering::Relaxed);
        if self.module_seen.swap(false, Ordering::Relaxed) || connection.opened() <= 1 {
            tracing::info!(
                "no Sluice module on this Redis: it decides with the Lua library ({})",
                if self.functions() {
                    "a Function"
                } else {
                    "EVALSHA"
                }
            );
        }
    }

    /// The form the last call used: `module`, `function` or `script`.
    pub fn describe(&self) -> &'static str {
        if self.module && self.module_seen.load(Ordering::Relaxed) {
            "module"
        } else if self.functions() {
            "function"
        } else {
            "script"
        }
    }

    fn functions(&self) -> bool {
        self.functions.load(Ordering::Relaxed)
    }

    fn use_scripts(&self) {
        self.functions.store(false, Ordering::Relaxed);
    }
}

/// Runs the library on `groups` in `mode` at `now` (Redis `TIME` when
/// `None`, then refused by Redis after `deadline` if one is given, in µs
/// of Redis `TIME`); returns the raw reply.
pub async fn call(
    connection: &Connection,
    form: &Form,
    now: Option<u64>,
    deadline: Option<u64>,
    mode: Mode,
    groups: &[&Group],
) -> RedisResult<Vec<i64>> {
    let time = Time { now, deadline };
    if form.try_module(connection) {
        let sent = query_bytes(connection, form, MODULE_COMMAND, None, time, mode, groups).await;
        match sent {
            Err(e) if says(&e, "unknown command") => form.module_missing(connection),
            result => {
                if result.is_ok() {
                    form.module_answered();
                }
                return result;
            }
        }
    }
    if form.functions() {
        let fcall = || {
            let id = Some(library::function_name());
            command("FCALL", id, time, mode, false, groups)
        };
        match connection.query(&fcall()).await {
            Err(e) if says(&e, "Function not found") => {
                let load = redis::cmd("FUNCTION")
                    .arg("LOAD")
                    .arg("REPLACE")
                    .arg(library::function_library())
                    .to_owned();
                match connection.query::<()>(&load).await {
                    Ok(()) => return connection.query(&fcall()).await,
                    // No functions, or no permission: scripts may still do.
                    Err(e) if says(&e, "unknown command") || e.code() == Some("NOPERM") => {
                        form.use_scripts()
                    }
                    // Anything else may pass (OOM, BUSY, LOADING, a lost
                    // connection): this call fails, the next loads again.
                    Err(e) => return Err(e),
                }
            }
            Err(e) if says(&e, "unknown command") => form.use_scripts(),
            result => return result,
        }
    }
    let evalsha = || {
        let id = Some(library::script_sha());
        command("EVALSHA", id, time, mode, false, groups)
    };
    match connection.query(&evalsha()).await {
        Err(e) if e.code() == Some("NOSCRIPT") => {
            let load = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(library::script())
                .to_owned();
            connection.query::<String>(&load).await?;
            connection.query(&evalsha()).await
        }
        result => result,
    }
}

/// Sends the call `name` (`id`) names, asking for the bytes reply
/// ([`BYTES_REPLY`]) unless Redis refused it on this connection; on a
/// refusal (an unknown mode: a module older than that form), asks again
/// for the array, and only for arrays on this connection. Either reply
/// reads as the same integers ([`reply::Integers`]).
async fn query_bytes(
    connection: &Connection,
    form: &Form,
    name: &str,
    id: Option<&str>,
    time: Time,
    mode: Mode,
    groups: &[&Group],
) -> RedisResult<Vec<i64>> {
    let first_key = groups.iter().find_map(|g| g.keys.first());
    let send = |bytes: bool| async move {
        let cmd = command(name, id, time, mode, bytes, groups);
        let reply: reply::Integers = match first_key {
            Some(key) => connection.query_at(&cmd, key).await?,
            None => connection.query(&cmd).await?,
        };
        Ok(reply.0)
    };
    if form.try_bytes(connection) {
        match send(true).await {
            Err(e) if refuses_bytes(&e) => form.bytes_refused(connection),
            result => return result,
        }
    }
    send(false).await
}

/// Whether Redis refused a call's mode as unknown: the library (the Lua
/// one, or a module older than the bytes reply) read the
/// [`BYTES_REPLY`] prefix as part of the mode.
fn refuses_bytes(error: &RedisError) -> bool {
    says(error, "unknown mode")
}

/// The time a call decides at, and the deadline it must start by.
#[derive(Clone, Copy)]
struct Time {
    /// The caller's time; Redis `TIME` when `None`.
    now: Option<u64>,
    /// On Redis `TIME`, the instant after which Redis refuses the call.
    deadline: Option<u64>,
}

/// The native module's command: `FCALL`'s arguments without the
/// function's name.
pub const MODULE_COMMAND: &str = "SLUICE.CALL";

/// `<name> [<id>] <number of keys> <keys…>`, then the arguments of
/// [`library::Call::arguments`] from groups already packed: `<now> <mode>
/// [<n> <packed values>]…` (a test holds the two equal), where `<now>` is
/// `<<deadline>` for Redis `TIME` with a deadline. The module's command
/// has no `<id>`. With `bytes`, the mode has the [`BYTES_REPLY`] prefix
/// (the module's bytes reply; the Lua library refuses it).
fn command(
    name: &str,
    id: Option<&str>,
    time: Time,
    mode: Mode,
    bytes: bool,
    groups: &[&Group],
) -> Cmd {
    let mut cmd = redis::cmd(name);
    if let Some(id) = id {
        cmd.arg(id);
    }
    cmd.arg(groups.iter().map(|g| g.keys.len()).sum::<usize>());
    for group in groups {
        cmd.arg(&group.keys);
    }
    match time {
        Time { now: Some(now), .. } => cmd.arg(now),
        Time {
            deadline: Some(deadline),
            ..
        } => cmd.arg(format!("<{deadline}")),
        _ => cmd.arg(""),
    };
    let argument = mode.argument();
    if bytes {
        cmd.arg([&[BYTES_REPLY][..], argument.as_bytes()].concat());
    } else {
        cmd.arg(&*argument);
    }
    for group in groups {
        cmd.arg(group.keys.len()).arg(&group.values[..]);
    }
    cmd
}

/// Whether Redis answered an error whose message contains `text`.
fn says(error: &RedisError, text: &str) -> bool {
    error.code().is_some() && error.to_string().contains(text)
}

/// What the store needs to call the library on its own checks: the
/// connection, the form, the time limit, the clock and the key prefix.
#[derive(Clone)]
pub struct Caller {
    /// The connection every call goes through.
    pub connection: Connection,
    /// The form of the library this Redis runs.
    pub form: Arc<Form>,
    /// The most one call may take.
    pub timeout: Duration,
    /// The time to decide at; Redis `TIME` when `None`.
    pub clock: Option<Arc<dyn Clock>>,
    /// Prepended to every key.
    pub prefix: String,
}

impl Caller {
    /// The time to decide at now: the clock's, or `None` for Redis `TIME`.
    pub fn now(&self) -> Option<u64> {
        self.clock.as_ref().map(|c| c.now_us())
    }

    /// The Redis key that holds `check`'s state.
    pub fn key_of(&self, check: &Check<'_>) -> String {
        keys::state_key(&self.prefix, check.policy, check.key)
    }

    /// The group of `checks` as the library takes it.
    pub fn group(&self, checks: &[Check<'_>]) -> Group {
        let mut group = Group {
            keys: Vec::with_capacity(checks.len()),
            values: Vec::with_capacity(checks.len() * VALUES_PER_CHECK * 8),
        };
        for check in checks {
            group.push(
                self.key_of(check),
                library::values(check.quota, check.cost, check.shadow),
            );
        }
        group
    }

    /// Runs the library on `checks` (all in one slot) in `mode`, in a call
    /// of its own; returns the time it decided at and one decision per check.
    pub async fn run(
        &self,
        checks: &[Check<'_>],
        mode: Mode,
    ) -> Result<(u64, Vec<Decision>), StoreError> {
        let group = self.group(checks);
        let groups = [&group];
        let call = call(
            &self.connection,
            &self.form,
            self.now(),
            None,
            mode,
            &groups,
        );
        let reply = within(self.timeout, call).await?;
        reply::parse(&reply, checks, |c| self.key_of(c))
    }

    /// Sends one command (routed by its key on a cluster) within the time
    /// limit.
    pub async fn query(&self, cmd: &Cmd) -> Result<(), StoreError> {
        self.query_as(cmd).await
    }

    /// Sends one command as [`Caller::query`] does, and reads its reply as `T`.
    pub async fn query_as<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        within(self.timeout, self.connection.query::<T>(cmd)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Algorithm, Quota};

    /// The store sends exactly the documented calling protocol.
    #[test]
    fn the_command_is_the_documented_call() {
        let quota = Quota::new(Algorithm::LeakyBucket, 3, Duration::from_secs(2), Some(5)).unwrap();
        let mut group = Group::default();
        group.push("k".to_owned(), library::values(&quota, 2, false));
        let mode = Mode::Refund { at_us: 99 };
        let time = Time {
            now: Some(7),
            deadline: None,
        };
        let cmd = command("FCALL", Some("f"), time, mode, false, &[&group]);
        let sent: Vec<Vec<u8>> = cmd
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(bytes) => bytes.to_vec(),
                other => panic!("an argument that is not bytes: {other:?}"),
            })
            .collect();
        let mut expected: Vec<Vec<u8>> = [&b"FCALL"[..], b"f", b"1", b"k"]
            .iter()
            .map(|a| a.to_vec())
            .collect();
        let documented = library::Call::one(mode, Some(7), &quota, 2);
        expected.extend(documented.arguments().iter().map(|a| a.to_bytes()));
        assert_eq!(sent, expected);
    }

    /// An unknown mode (what the Lua library, and a module older than the
    /// bytes reply, answer to `bd`) is a refusal of the bytes reply; other
    /// errors are not.
    #[test]
    fn an_unknown_mode_refuses_the_bytes_reply() {
        let server = |code: &str, detail: &str| {
            redis::make_extension_error(code.to_owned(), Some(detail.to_owned()))
        };
        assert!(refuses_bytes(&server("ERR", "sluice: unknown mode bd")));
        assert!(!refuses_bytes(&server(
            "LATE",
            "the call reached Redis after its deadline"
        )));
        assert!(!refuses_bytes(&server(
            "ERR",
            "unknown command 'SLUICE.CALL'"
        )));
        let io = RedisError::from(std::io::Error::other("unknown mode"));
        assert!(!refuses_bytes(&io), "only Redis's answer counts");
    }

    /// A library that does not know the bytes reply (here the Lua one on a
    /// real Redis, which refuses `bd` with the words of a module older than
    /// that form) gets the array on the same connection, with the same
    /// integers, and no second refusal.
    #[tokio::test]
    async fn a_library_without_the_bytes_reply_gets_the_array() {
        let redis = sluice_testkit::RedisServer::start();
        let store = crate::store::redis::RedisStore::connect(&redis.url())
            .await
            .unwrap();
        let connection = store.caller.connection.clone();
        let load = redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg("REPLACE")
            .arg(library::function_library())
            .to_owned();
        connection.query::<()>(&load).await.unwrap();
        let quota = Quota::new(Algorithm::FixedWindow, 5, Duration::from_secs(60), None).unwrap();
        let mut group = Group::default();
        group.push("k".to_owned(), library::values(&quota, 2, false));
        let form = Form::new(true, true);
        let time = Time {
            now: Some(1_764_000_000_000_000),
            deadline: None,
        };
        let id = Some(library::function_name());
        let groups = [&group];
        let call = || query_bytes(&connection, &form, "FCALL", id, time, Mode::Peek, &groups);
        assert!(form.try_bytes(&connection));
        let first = call().await.unwrap();
        assert!(!form.try_bytes(&connection), "refused on this connection");
        assert_eq!(call().await.unwrap(), first);
        let array = command("FCALL", id, time, Mode::Peek, false, &[&group]);
        let direct: Vec<i64> = connection.query(&array).await.unwrap();
        assert_eq!((first.len(), &first), (1 + REPLY_PER_CHECK, &direct));
        let info = redis.cli(&["INFO", "commandstats"]);
        let fcall = info
            .lines()
            .find(|l| l.starts_with("cmdstat_fcall:"))
            .unwrap();
        let fields: Vec<&str> = fcall.split([':', ',']).collect();
        assert!(
            fields.contains(&"calls=4") && fields.contains(&"failed_calls=1"),
            "one refusal, then arrays: {fcall}"
        );
    }

    /// On Redis `TIME`, a deadline goes where the time would: `<` and it.
    #[test]
    fn a_deadline_replaces_the_empty_time() {
        let group = Group::default();
        let sent = |time| {
            let cmd = command("FCALL", Some("f"), time, Mode::Decide, false, &[&group]);
            let args: Vec<Vec<u8>> = cmd
                .args_iter()
                .map(|a| match a {
                    redis::Arg::Simple(bytes) => bytes.to_vec(),
                    other => panic!("an argument that is not bytes: {other:?}"),
                })
                .collect();
            args[3].clone()
        };
        let deadline = Some(1_764_000_000_250_000);
        assert_eq!(
            sent(Time {
                now: None,
                deadline
            }),
            b"<1764000000250000"
        );
        assert_eq!(
            sent(Time {
                now: None,
                deadline: None
            }),
            b""
        );
        assert_eq!(
            sent(Time {
                now: Some(5),
                deadline
            }),
            b"5"
        );
    }
}
