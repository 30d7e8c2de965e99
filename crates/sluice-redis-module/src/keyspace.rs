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
//!   keyspace subscribers as that command would be. A new key holds the
//!   replicated value itself, as `SET` keeps its argument; a string
//!   written in place is kept in Redis's `raw` encoding (a replica,
//!   loading `SET`, keeps short ones `embstr`): the same bytes and expiry.
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
    /// The string this call last read or wrote, by key.
    last: RefCell<LastString>,
}

/// The string at the key this call read or wrote last, as Redis holds it:
/// the checks of one call on a hot key look its value up in Redis once.
/// It stays true for the whole call: no other client runs meanwhile, Redis
/// expires no key while a command runs (its clock is the command's start,
/// and every expiry set here is later than that), and every write of the
/// call goes through this `Keyspace`, which updates or forgets it.
#[derive(Default)]
struct LastString {
    key: Vec<u8>,
    value: Vec<u8>,
    known: Known,
}

/// What [`LastString`] knows of its key.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Known {
    /// Nothing: no key read yet, or a write it did not follow.
    #[default]
    Nothing,
    /// There is no such key.
    Missing,
    /// The key is a string, `value`.
    String,
}

impl LastString {
    /// The string at `key` (`None`: missing) when it is the one known.
    fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        match self.known {
            Known::Nothing => None,
            _ if self.key != key => None,
            Known::Missing => Some(None),
            Known::String => Some(Some(&self.value)),
        }
    }

    /// `key` now holds `value` (`None`: no key).
    fn set(&mut self, key: &[u8], value: Option<&[u8]>) {
        self.key.clear();
        self.key.extend_from_slice(key);
        self.value.clear();
        self.known = match value {
            Some(value) => {
                self.value.extend_from_slice(value);
                Known::String
            }
            None => Known::Missing,
        };
    }

    fn forget(&mut self) {
        self.known = Known::Nothing;
    }
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
        let at = key.as_ptr() as usize;
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

    /// `key` opened for writing, and its name.
    fn open_writable(&self, key: &[u8]) -> (WriteKey, Name<'a>) {
        let name = self.name(key);
        (WriteKey::open(self.ctx, &name), name)
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
    /// the command Redis propagates for that `SET`.
    pub fn set(&self, key: &[u8], value: &[u8], ttl_ms: u64) -> Result<(), String> {
        let at_ms = ffi::redis_millis()
            .zip(i64::try_from(ttl_ms).ok())
            .and_then(|(now, ttl)| now.checked_add(ttl))
            .ok_or("SET: no expiry instant")?;
        self.last.borrow_mut().forget();
        let (opened, name) = self.open_writable(key);
        let value = self.string(value);
        opened.set_string(&value).map_err(|e| format!("SET: {e}"))?;
        opened.expire_at(at_ms).map_err(|e| format!("SET: {e}"))?;
        drop(opened);
        let at = self.string(itoa::Buffer::new().format(at_ms).as_bytes());
        let pxat = self.pxat.get_or_init(|| self.string(b"PXAT"));
        self.replicate(c"SET", &[&name, &value, pxat, &at])?;
        self.notify(NotifyEvent::STRING, "set", &name);
        self.notify(NotifyEvent::GENERIC, "expire", &name);
        self.last.borrow_mut().set(key, Some(value.as_slice()));
        Ok(())
    }

    /// `SET key value KEEPTTL` on `key`, a string: `value` in place, the
    /// expiry kept.
    pub fn set_keep_ttl(&self, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.last.borrow_mut().forget();
        let (opened, name) = self.open_writable(key);
        if opened.kind() != KeyType::String {
            return Err("SET KEEPTTL: the key is no string".to_owned());
        }
        let value = self.string(value);
        opened.set_string(&value).map_err(|e| format!("SET: {e}"))?;
        drop(opened);
        self.replicate(c"SET", &[&name, &value, &self.string(b"KEEPTTL")])?;
        self.notify(NotifyEvent::STRING, "set", &name);
        self.last.borrow_mut().set(key, Some(value.as_slice()));
        Ok(())
    }

    /// `DEL key`: replicated (and notified) only when there was a key, as
    /// Redis does.
    pub fn delete(&self, key: &[u8]) -> Result<(), String> {
        self.last.borrow_mut().forget();
        let (opened, name) = self.open_writable(key);
        if opened.kind() != KeyType::Empty {
            opened.delete().map_err(|e| format!("DEL: {e}"))?;
            drop(opened);
            self.replicate(c"DEL", &[&name])?;
            self.notify(NotifyEvent::GENERIC, "del", &name);
        }
        self.last.borrow_mut().set(key, None);
        Ok(())
    }

    /// The type of `key`, as `TYPE` names it.
    pub fn kind(&self, key: &[u8]) -> Result<Kind, String> {
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
    /// call read or wrote last is not looked up again (see `LastString`);
    /// `read` must not use this `Keyspace`.
    pub fn read<T>(&self, key: &[u8], read: impl FnOnce(&[u8]) -> T) -> Result<Option<T>, String> {
        if let Some(known) = self.last.borrow().get(key) {
            return Ok(known.map(read));
        }
        let opened = self.open(key);
        match opened.key_type() {
            KeyType::Empty => {
                self.last.borrow_mut().set(key, None);
                Ok(None)
            }
            KeyType::String => {
                let value = opened
                    .read()
                    .map_err(|e| format!("reading the string failed: {e}"))?;
                if let Some(value) = value {
                    self.last.borrow_mut().set(key, Some(value));
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
