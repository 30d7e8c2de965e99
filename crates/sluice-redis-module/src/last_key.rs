//! The key a call touched last: its string as the call left it, and the
//! write not yet made in Redis. The checks of one call on a hot key (what
//! batching makes of it: a group per decision, each on the key again) look
//! the key up in Redis once and write it once, at the end or when the call
//! moves to another key.
//!
//! What it says stays true for the whole call: no other client runs
//! meanwhile, Redis expires no key while a command runs (its clock is the
//! command's start, and every expiry the call sets is later), and every
//! read and write of the call goes through [`Keyspace`](crate::keyspace),
//! which makes the pending write in Redis before it touches another key,
//! runs another command, or ends. No I/O here.

/// A write kept for the end of the call (or of its run of checks on the
/// key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// `SET key value PXAT at_ms`.
    Set {
        /// The expiry instant, ms since the epoch on Redis's clock.
        at_ms: i64,
    },
    /// `SET key value KEEPTTL`.
    KeepTtl,
    /// `DEL key`.
    Delete,
}

/// What is known of one key.
#[derive(Debug, Default)]
pub struct LastKey {
    key: Vec<u8>,
    /// Where the bytes of the key were when it was given: which of the
    /// call's key arguments it is (compared, never read).
    origin: usize,
    value: Vec<u8>,
    /// `None`: nothing known; `Some(false)`: no such key; `Some(true)`: a
    /// string, `value`.
    exists: Option<bool>,
    pending: Option<Pending>,
}

impl LastKey {
    /// The string at `key` (`None`: missing) when `key` is the one known.
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        match self.exists {
            Some(exists) if self.key == key => Some(exists.then_some(&self.value[..])),
            _ => None,
        }
    }

    /// Whether `key` is the one known.
    pub fn is(&self, key: &[u8]) -> bool {
        self.exists.is_some() && self.key == key
    }

    /// Remembers what Redis holds at `key` (`None`: no key), read there.
    /// The pending write, of another key, must have been made first.
    pub fn read(&mut self, key: &[u8], value: Option<&[u8]>) {
        debug_assert!(self.pending.is_none());
        self.remember(key, value);
    }

    /// Keeps `write` of `key` (to `value`; `None` for a delete) for later,
    /// in place of the one pending for it: the latest value with, for
    /// `KeepTtl` after a `Set`, the `Set`'s expiry. A write pending for
    /// another key must have been made first.
    pub fn write(&mut self, key: &[u8], value: Option<&[u8]>, write: Pending) {
        debug_assert!(self.pending.is_none() || self.is(key));
        let merged = match (self.pending.filter(|_| self.is(key)), write) {
            (Some(Pending::Set { at_ms }), Pending::KeepTtl) => Pending::Set { at_ms },
            (_, write) => write,
        };
        self.remember(key, value);
        self.pending = Some(merged);
    }

    /// The write to make now, of [`LastKey::key`] to [`LastKey::value`];
    /// it is no longer pending.
    pub fn take_pending(&mut self) -> Option<Pending> {
        self.pending.take()
    }

    /// The key known, and where its bytes were given.
    pub fn key(&self) -> (&[u8], usize) {
        (&self.key, self.origin)
    }

    /// Its string (empty when it has none).
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// Forgets the key (a command may have changed it). Nothing may be
    /// pending.
    pub fn forget(&mut self) {
        debug_assert!(self.pending.is_none());
        self.exists = None;
    }

    fn remember(&mut self, key: &[u8], value: Option<&[u8]>) {
        if self.key != key {
            self.key.clear();
            self.key.extend_from_slice(key);
            self.origin = key.as_ptr() as usize;
        }
        self.value.clear();
        self.value.extend_from_slice(value.unwrap_or_default());
        self.exists = Some(value.is_some());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_for_its_key_only() {
        let mut last = LastKey::default();
        assert_eq!(last.get(b"k"), None);
        last.read(b"k", Some(b"v1"));
        assert_eq!(last.get(b"k"), Some(Some(&b"v1"[..])));
        assert_eq!(last.get(b"other"), None);
        last.read(b"gone", None);
        assert_eq!(last.get(b"gone"), Some(None));
        assert_eq!(last.get(b"k"), None);
        last.forget();
        assert_eq!(last.get(b"gone"), None);
        assert_eq!(last.take_pending(), None);
    }

    #[test]
    fn the_last_write_of_a_key_stands_for_all_of_them() {
        let mut last = LastKey::default();
        last.read(b"k", Some(b"v0"));
        last.write(b"k", Some(b"v1"), Pending::Set { at_ms: 10 });
        last.write(b"k", Some(b"v2"), Pending::Set { at_ms: 20 });
        assert_eq!(last.get(b"k"), Some(Some(&b"v2"[..])));
        // A refund after a charge in one call keeps the charge's expiry.
        last.write(b"k", Some(b"v3"), Pending::KeepTtl);
        assert_eq!(last.take_pending(), Some(Pending::Set { at_ms: 20 }));
        assert_eq!((last.key().0, last.value()), (&b"k"[..], &b"v3"[..]));
        // Made: still known, nothing pending.
        assert_eq!(last.get(b"k"), Some(Some(&b"v3"[..])));
        assert_eq!(last.take_pending(), None);
        last.write(b"k", Some(b"v4"), Pending::KeepTtl);
        assert_eq!(last.take_pending(), Some(Pending::KeepTtl));
        last.write(b"k", None, Pending::Delete);
        assert_eq!(last.get(b"k"), Some(None));
        last.write(b"k", Some(b"v5"), Pending::Set { at_ms: 30 });
        assert_eq!(last.take_pending(), Some(Pending::Set { at_ms: 30 }));
    }

    #[test]
    fn a_write_of_a_new_key_pends_as_it_is() {
        let mut last = LastKey::default();
        last.read(b"a", Some(b"x"));
        last.write(b"b", Some(b"y"), Pending::KeepTtl);
        assert_eq!(last.get(b"a"), None);
        assert_eq!(last.take_pending(), Some(Pending::KeepTtl));
        assert_eq!((last.key().0, last.value()), (&b"b"[..], &b"y"[..]));
    }
}
