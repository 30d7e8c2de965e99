//! The Redis module API calls the `redis-module` crate has no safe wrapper
//! for, wrapped here, the crate's only `unsafe` besides the entry point:
//! Redis's clocks (`RedisModule_CachedMicroseconds`, `Microseconds`,
//! `Milliseconds`) and a key opened for writing whose expiry can be set to
//! an instant (`RedisModule_SetAbsExpire`; the crate's `RedisKeyWritable`
//! sets only a relative one, from an instant Redis reads itself, which the
//! replicated command could not name).
//!
//! The API's function pointers are `static mut`s that `RedisModule_Init`
//! sets once, when the module loads, before any command runs; they are
//! only read after that, on Redis's main thread. A function Redis does not
//! export (an older Redis) stays `None`.

#![allow(unsafe_code)]

use std::ffi::CStr;

use redis_module::raw::{self, KeyMode, KeyType};
use redis_module::{Context, RedisString};

/// The most arguments [`replicate`] takes.
pub const MAX_REPLICATED_ARGS: usize = 4;

/// Replicates `command` with `args` to the replicas and the AOF as one
/// effect of the call (`RedisModule_Replicate`, with the `v` format: Redis
/// keeps a reference to each string, no copy).
pub fn replicate(ctx: &Context, command: &CStr, args: &[&RedisString]) -> Result<(), &'static str> {
    let mut argv = [std::ptr::null_mut(); MAX_REPLICATED_ARGS];
    let argv = argv
        .get_mut(..args.len())
        .ok_or("too many arguments to replicate")?;
    for (slot, arg) in argv.iter_mut().zip(args) {
        *slot = arg.inner;
    }
    // SAFETY: as in `redis_micros`.
    let Some(replicate) = (unsafe { raw::RedisModule_Replicate }) else {
        return Err("Redis has no RedisModule_Replicate");
    };
    // SAFETY: `ctx` is the command's context; the format `v` takes an
    // array of strings and its length, which `argv` is (each string alive:
    // borrowed from `args` for the call).
    let status = unsafe {
        replicate(
            ctx.get_raw(),
            command.as_ptr(),
            c"v".as_ptr(),
            argv.as_ptr(),
            argv.len(),
        )
    };
    ok(status, "RedisModule_Replicate refused the command")
}

/// Redis's clock, the one `TIME` reads, in µs since the epoch: the time the
/// command started (`RedisModule_CachedMicroseconds`, Redis 7.2+) or now
/// (`RedisModule_Microseconds`, 7.0); `None` on a Redis that has neither.
pub fn redis_micros() -> Option<u64> {
    // SAFETY: read-only copies of pointers set at load (see the module doc).
    let (cached, now) = unsafe {
        (
            raw::RedisModule_CachedMicroseconds,
            raw::RedisModule_Microseconds,
        )
    };
    let read = cached.or(now)?;
    // SAFETY: an API function taking nothing, called on the main thread.
    u64::try_from(unsafe { read() }).ok()
}

/// Redis's clock in ms since the epoch, as `SET … PX` reads it
/// (`RedisModule_Milliseconds`, in every Redis with modules).
pub fn redis_millis() -> Option<i64> {
    // SAFETY: as in `redis_micros`.
    let read = unsafe { raw::RedisModule_Milliseconds }?;
    // SAFETY: as in `redis_micros`.
    Some(unsafe { read() })
}

/// A key opened for writing, closed when dropped.
pub struct WriteKey {
    key: *mut raw::RedisModuleKey,
}

impl WriteKey {
    /// `name` opened for reading and writing in `ctx`'s database.
    pub fn open(ctx: &Context, name: &RedisString) -> WriteKey {
        WriteKey {
            key: raw::open_key(ctx.get_raw(), name.inner, KeyMode::READ | KeyMode::WRITE),
        }
    }

    /// The key's type (`Empty` when it does not exist).
    pub fn kind(&self) -> KeyType {
        // SAFETY: as in `redis_micros`; the key is open (and may be null,
        // which the function reads as empty).
        match unsafe { raw::RedisModule_KeyType } {
            Some(key_type) => KeyType::from(unsafe { key_type(self.key) }),
            None => KeyType::Empty,
        }
    }

    /// Deletes the key (and its expiry), whatever its type.
    pub fn delete(&self) -> Result<(), &'static str> {
        // SAFETY: as in `kind`.
        let deleted = match unsafe { raw::RedisModule_DeleteKey } {
            Some(delete) => unsafe { delete(self.key) },
            None => raw::REDISMODULE_ERR as i32,
        };
        ok(deleted, "deleting the key failed")
    }

    /// Makes the key the string `value` (not empty), replacing a value of
    /// another type; an existing string is overwritten in place
    /// (`RedisModule_StringTruncate` when the length differs, then
    /// `StringDMA`), its expiry left as it is. A missing key is given
    /// `value` itself (`RedisModule_StringSet`, as `SET` keeps its
    /// argument), with no expiry.
    pub fn set_string(&self, value: &RedisString) -> Result<(), &'static str> {
        let bytes = value.as_slice();
        if bytes.is_empty() {
            return Err("an empty string is no key");
        }
        match self.kind() {
            KeyType::String => {}
            KeyType::Empty => {
                return match raw::string_set(self.key, value.inner) {
                    raw::Status::Ok => Ok(()),
                    raw::Status::Err => Err("setting the string failed"),
                };
            }
            _ => self.delete()?,
        }
        let mut len = 0;
        let mut dma = raw::string_dma(self.key, &mut len, KeyMode::WRITE);
        if len != bytes.len() {
            // On an empty key this creates the string.
            if raw::string_truncate(self.key, bytes.len()) != raw::Status::Ok {
                return Err("resizing the string failed");
            }
            dma = raw::string_dma(self.key, &mut len, KeyMode::WRITE);
        }
        if dma.is_null() || len != bytes.len() {
            return Err("writing the string failed");
        }
        // SAFETY: `dma` points at the key's `len` bytes, writable until
        // the key is closed or changed, and `bytes` is another buffer.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dma.cast::<u8>(), len) };
        Ok(())
    }

    /// Makes the key expire at `at_ms`, ms since the epoch.
    pub fn expire_at(&self, at_ms: i64) -> Result<(), &'static str> {
        // SAFETY: as in `kind`.
        let set = match unsafe { raw::RedisModule_SetAbsExpire } {
            Some(set_abs_expire) => unsafe { set_abs_expire(self.key, at_ms) },
            None => raw::REDISMODULE_ERR as i32,
        };
        ok(set, "setting the expiry failed")
    }
}

impl Drop for WriteKey {
    fn drop(&mut self) {
        raw::close_key(self.key);
    }
}

fn ok(status: i32, error: &'static str) -> Result<(), &'static str> {
    if status == raw::REDISMODULE_OK as i32 {
        Ok(())
    } else {
        Err(error)
    }
}
