//! The Redis commands a decision runs, the ones the Lua library runs, and
//! their replication: Redis replicates each write to the replicas and the
//! AOF as its effect (wrapped with the others of the call in one
//! `MULTI`/`EXEC`), never the `SLUICE.CALL` itself, which a replica would
//! decide again with its own clock.
//!
//! - The strings (every check's `GET`, `SET … PX`, `SET … KEEPTTL`, `DEL`
//!   and `TYPE`) go through the low-level key API (`RedisModule_OpenKey`,
//!   `KeyType`, `StringSet`, `StringDMA`, `StringTruncate`, `SetAbsExpire`,
//!   `DeleteKey`): no fake client, argument vector and reply to build per
//!   command. A write is replicated by `RedisModule_Replicate` as the
//!   command Redis itself propagates for the Lua library's (`SET key value
//!   PXAT <ms>`, `SET key value KEEPTTL`, `DEL key`), and notified to
//!   keyspace subscribers as that command would be. A call writes a key
//!   once, its last state, when it moves to another key or ends (see
//!   `last_key`). A new key holds the replicated value itself, as `SET`
//!   keeps its argument; a string written in place is kept in Redis's
//!   `raw` encoding (a replica, loading `SET`, keeps short ones `embstr`):
//!   the same bytes and expiry.
//! - The sorted sets of the sliding log go through `RedisModule_Call`,
//!   the writes with the `!` flag, which replicates them as they are made.
//! - The time is Redis's clock read by the module API (`TIME`'s clock),
//!   or on a Redis without the call (before 7.2) the real-time clock
//!   `TIME` reads, read in Redis's process.

use std::cell::{OnceCell, RefCell};
use std::ffi::CStr;

use redis_module::key::RedisKey;
use redis_module::raw::{self, NotifyEvent};
use redis_module::{
    CallOptions, CallOptionsBuilder, CallReply, CallResult, Context, KeyType, RedisString,
};

use crate::ffi::{self, WriteKey};
use crate::last_key::{LastKey, Pending};

/// What a command answered: the few shapes the library reads.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// An integer.
    Int(i64),
    /// A string (bulk or status).
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Reply>),
    /// Nothing (a missing key's `GET`).
    Null,
}

/// The Redis type of a key, as the library tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No such key.
    None,
    /// A string: a packed state.
    String,
    /// A sorted set: a sliding log.
    Zset,
    /// A type Sluice never writes, by its error marker's code (1 list,
    /// 2 set, 3 hash, 4 stream, 0 another).
    Other(i64),
}

/// Runs commands on the keyspace of the calling client's database.
pub struct Keyspace<'a> {
    ctx: &'a Context,
    options: OnceCell<CallOptions>,
    /// The call's keys as Redis passed them, by the address of their bytes
    /// (sorted): a key is opened and replicated with its own string, not
    /// a copy.
    names: Vec<(usize, &'a RedisString)>,
    /// `PXAT`, made once per call.
    pxat: OnceCell<RedisString>,
    /// The key this call touched last, and its write not yet made.
    last: RefCell<LastKey>,
}

/// A key's name as a Redis string: the call's own argument, or a copy.
enum Name<'a> {
    Argument(&'a RedisString),
    Copy(RedisString),
}

impl std::ops::Deref for Name<'_> {
    type Target = RedisString;

    fn deref(&self) -> &RedisString {
        match self {
            Name::Argument(name) => name,
            Name::Copy(name) => name,
        }
    }
}

impl<'a> Keyspace<'a> {
    /// Commands through `ctx`, replicated as effects, on `keys` (the
    /// call's key arguments; other keys are copied when opened).
    pub fn new(ctx: &'a Context, keys: &'a [RedisString]) -> Keyspace<'a> {
        let mut names: Vec<(usize, &RedisString)> = keys
            .iter()
            .map(|name| (name.as_slice().as_ptr() as usize, name))
            .collect();
        names.sort_unstable_by_key(|(at, _)| *at);
        Keyspace {
            ctx,
            options: OnceCell::new(),
            names,
            pxat: OnceCell::new(),
            last: RefCell::default(),
        }
    }

    /// `key` as a Redis string: the call's argument when `key` is one of
    /// its keys' bytes, else a copy.
    fn name(&self, key: &[u8]) -> Name<'a> {
        self.name_at(key, key.as_ptr() as usize)
    }

    /// `key`, whose bytes were given at `at`, as a Redis string: the
    /// call's argument when they were one of its keys', else a copy.
    fn name_at(&self, key: &[u8], at: usize) -> Name<'a> {
        match self.names.binary_search_by_key(&at, |(a, _)| *a) {
            Ok(i) if self.names[i].1.as_slice().len() == key.len() => {
                Name::Argument(self.names[i].1)
            }
            _ => Name::Copy(self.string(key)),
        }
    }

    /// A Redis string of `bytes`.
    fn string(&self, bytes: &[u8]) -> RedisString {
        RedisString::create_from_slice(self.ctx.get_raw(), bytes)
    }

    /// Runs `command` with `args`.
    pub fn run(&self, command: &str, args: &[&[u8]]) -> Result<Reply, String> {
        self.flush()?;
        self.last.borrow_mut().forget();
        let options = self.options.get_or_init(|| {
            CallOptionsBuilder::new()
                .replicate()
                .errors_as_replies()
                .build()
        });
        let result: CallResult<'static> = self.ctx.call_ext(command, options, args);
        match result {
            Ok(reply) => Ok(read(&reply)),
            Err(e) => Err(e
                .to_utf8_string()
                .unwrap_or_else(|| format!("{command} failed"))),
        }
    }

    /// `key` opened for reading (closed when dropped, before any write).
    fn open(&self, key: &[u8]) -> RedisKey {
        self.ctx.open_key(&self.name(key))
    }

    /// Replicates `command` with `args` (see [`ffi::replicate`]).
    fn replicate(&self, command: &CStr, args: &[&RedisString]) -> Result<(), String> {
        ffi::replicate(self.ctx, command, args).map_err(|e| format!("{command:?}: {e}"))
    }

    /// Tells keyspace subscribers of `event` on `name`, when they listen
    /// to events of `class` (asked first: nothing to build when none do).
    fn notify(&self, class: NotifyEvent, event: &str, name: &RedisString) {
        if raw::get_keyspace_events().intersects(class) {
            self.ctx.notify_keyspace_event(class, event, name);
        }
    }

    /// `SET key value PX ttl_ms`: the string `value`, expiring `ttl_ms`
    /// from now on Redis's clock; replicated as `SET key value PXAT <ms>`,
    /// the command Redis propagates for that `SET`. Made in Redis by
    /// [`Keyspace::flush`]: the call's last write of a key stands for all.
    pub fn set(&self, key: &[u8], value: &[u8], ttl_ms: u64) -> Result<(), String> {
        let at_ms = ffi::redis_millis()
            .zip(i64::try_from(ttl_ms).ok())
            .and_then(|(now, ttl)| now.checked_add(ttl))
            .ok_or("SET: no expiry instant")?;
        self.pend(key, Some(value), Pending::Set { at_ms })
    }

    /// `SET key value KEEPTTL` on `key`, a string: `value` in place, the
    /// expiry kept (made as [`Keyspace::set`] is).
    pub fn set_keep_ttl(&self, key: &[u8], value: &[u8]) -> Result<(), String> {
        let known = self.last.borrow().get(key).map(|value| value.is_some());
        let is_string = match known {
            Some(is_string) => is_string,
            None => self.kind(key)? == Kind::String,
        };
        if !is_string {
            return Err("SET KEEPTTL: the key is no string".to_owned());
        }
        self.pend(key, Some(value), Pending::KeepTtl)
    }

    /// `DEL key` (made as [`Keyspace::set`] is): replicated (and
    /// notified) only when there was a key, as Redis does.
    pub fn delete(&self, key: &[u8]) -> Result<(), String> {
        self.pend(key, None, Pending::Delete)
    }

    /// Keeps `write` of `key` for later, after making the write pending
    /// for another key.
    fn pend(&self, key: &[u8], value: Option<&[u8]>, write: Pending) -> Result<(), String> {
        if !self.last.borrow().is(key) {
            self.flush()?;
        }
        self.last.borrow_mut().write(key, value, write);
        Ok(())
    }

    /// Makes the pending write in Redis, if there is one: call it before
    /// the call answers.
    pub fn flush(&self) -> Result<(), String> {
        let mut last = self.last.borrow_mut();
        let Some(write) = last.take_pending() else {
            return Ok(());
        };
        let (key, at) = last.key();
        let name = self.name_at(key, at);
        let made = match write {
            Pending::Set { at_ms } => self.write_set(name, last.value(), at_ms),
            Pending::KeepTtl => self.write_keep_ttl(name, last.value()),
            Pending::Delete => self.write_delete(name),
        };
        if made.is_err() {
            last.forget();
        }
        made
    }

    /// `SET key value PXAT at_ms`, made.
    fn write_set(&self, name: Name<'_>, value: &[u8], at_ms: i64) -> Result<(), String> {
        let opened = WriteKey::open(self.ctx, &name);
        let value = self.string(value);
        opened.set_string(&value).map_err(|e| format!("SET: {e}"))?;
        opened.expire_at(at_ms).map_err(|e| format!("SET: {e}"))?;
        drop(opened);
        let at = self.string(itoa::Buffer::new().format(at_ms).as_bytes());
        let pxat = self.pxat.get_or_init(|| self.string(b"PXAT"));
        self.replicate(c"SET", &[&name, &value, pxat, &at])?;
        self.notify(NotifyEvent::STRING, "set", &name);
        self.notify(NotifyEvent::GENERIC, "expire", &name);
        Ok(())
    }

    /// `SET key value KEEPTTL`, made.
    fn write_keep_ttl(&self, name: Name<'_>, value: &[u8]) -> Result<(), String> {
        let opened = WriteKey::open(self.ctx, &name);
        if opened.kind() != KeyType::String {
            return Err("SET KEEPTTL: the key is no string".to_owned());
        }
        let value = self.string(value);
        opened.set_string(&value).map_err(|e| format!("SET: {e}"))?;
        drop(opened);
        self.replicate(c"SET", &[&name, &value, &self.string(b"KEEPTTL")])?;
        self.notify(NotifyEvent::STRING, "set", &name);
        Ok(())
    }

    /// `DEL key`, made when there is a key.
    fn write_delete(&self, name: Name<'_>) -> Result<(), String> {
        let opened = WriteKey::open(self.ctx, &name);
        if opened.kind() == KeyType::Empty {
            return Ok(());
        }
        opened.delete().map_err(|e| format!("DEL: {e}"))?;
        drop(opened);
        self.replicate(c"DEL", &[&name])?;
        self.notify(NotifyEvent::GENERIC, "del", &name);
        Ok(())
    }

    /// The type of `key`, as `TYPE` names it.
    pub fn kind(&self, key: &[u8]) -> Result<Kind, String> {
        self.flush()?;
        Ok(match self.open(key).key_type() {
            KeyType::Empty => Kind::None,
            KeyType::String => Kind::String,
            KeyType::ZSet => Kind::Zset,
            KeyType::List => Kind::Other(1),
            KeyType::Set => Kind::Other(2),
            KeyType::Hash => Kind::Other(3),
            KeyType::Stream => Kind::Other(4),
            KeyType::Module => Kind::Other(0),
        })
    }

    /// The string at `key` (`None`: missing), as `GET` answers it: an
    /// error on a key of another type.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.read(key, <[u8]>::to_vec)
    }

    /// What `read` makes of the string at `key` (`None`: missing), read
    /// in place; an error on a key of another type, as `GET`. The key this
    /// call read or wrote last is not looked up again (see `last_key`);
    /// `read` must not use this `Keyspace`.
    pub fn read<T>(&self, key: &[u8], read: impl FnOnce(&[u8]) -> T) -> Result<Option<T>, String> {
        if let Some(known) = self.last.borrow().get(key) {
            return Ok(known.map(read));
        }
        self.flush()?;
        let opened = self.open(key);
        match opened.key_type() {
            KeyType::Empty => {
                self.last.borrow_mut().read(key, None);
                Ok(None)
            }
            KeyType::String => {
                let value = opened
                    .read()
                    .map_err(|e| format!("reading the string failed: {e}"))?;
                if let Some(value) = value {
                    self.last.borrow_mut().read(key, Some(value));
                }
                Ok(value.map(read))
            }
            _ => {
                Err("WRONGTYPE Operation against a key holding the wrong kind of value".to_owned())
            }
        }
    }

    /// The members a `ZRANGE`/`ZRANGEBYSCORE` of `args` answers.
    pub fn members(&self, command: &str, args: &[&[u8]]) -> Result<Vec<Vec<u8>>, String> {
        match self.run(command, args)? {
            Reply::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Reply::Bytes(m) => Ok(m),
                    other => Err(format!("{command} answered {other:?}")),
                })
                .collect(),
            other => Err(format!("{command} answered {other:?}")),
        }
    }

    /// Redis's clock (`TIME`'s), in µs since the epoch: the module API's
    /// on Redis 7.2+; on older ones the system's real-time clock, the one
    /// `TIME` reads (`gettimeofday`), read in Redis's own process (a `TIME`
    /// command run from here costs more than a batch's decisions).
    pub fn time(&self) -> Result<u64, String> {
        if let Some(now) = ffi::redis_micros() {
            return Ok(now);
        }
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|since| u64::try_from(since.as_micros()).ok())
            .ok_or_else(|| "the system clock is before 1970".to_owned())
    }

    /// Logs `message` as a warning in the Redis log.
    pub fn warn(&self, message: &str) {
        self.ctx.log_warning(message);
    }
}

impl Drop for Keyspace<'_> {
    /// Makes a write still pending (the call flushes before it answers;
    /// this is for a path that returned early).
    fn drop(&mut self) {
        if let Err(error) = self.flush() {
            self.warn(&format!(
                "sluice: a write at the end of a call failed: {error}"
            ));
        }
    }
}

fn read(reply: &CallReply<'_>) -> Reply {
    match reply {
        CallReply::I64(n) => Reply::Int(n.to_i64()),
        CallReply::String(s) => Reply::Bytes(s.as_bytes().to_vec()),
        CallReply::Array(items) => Reply::Array(
            items
                .iter()
                .map(|item| item.map_or(Reply::Null, |r| read(&r)))
                .collect(),
        ),
        _ => Reply::Null,
    }
}
