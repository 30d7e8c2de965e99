//! One key's entry, packed into one 64-byte cache line: the key's name, its
//! state with the fingerprint of the quota it was made under, and when it
//! expires.
//!
//! A store holds millions of these, so their size is the store's memory:
//! names of up to [`INLINE`] bytes (`policy`, a separator and `key`) live in
//! the entry itself instead of a heap allocation of their own, and the
//! fingerprint sits in the padding after the state's tag.

use std::hash::{BuildHasher, Hasher};

use crate::algorithm::{
    self, fixed_window, gcra, leaky_bucket, sliding_window_counter, sliding_window_log,
    token_bucket,
};
use crate::{Algorithm, Decision, Quota};

/// The byte between the policy and the key in a name. It cannot occur in
/// UTF-8, so `("ab", "c")` and `("a", "bc")` are different names.
const SEP: u8 = 0xff;

/// The longest name stored inline: `policy`, [`SEP`] and `key` together.
pub(super) const INLINE: usize = 22;

/// One key: its name, its state and when it can go.
#[repr(align(64))]
pub(super) struct Entry {
    pub(super) name: Name,
    pub(super) slot: Slot,
    /// When the key is back to its untouched state and the entry can go.
    pub(super) expires_at_us: u64,
}

const _: () = assert!(size_of::<Entry>() == 64, "an entry fills one cache line");
const _: () = assert!(
    size_of::<Slot>() == 32,
    "the fingerprint fits beside the tag"
);
const _: () = assert!(size_of::<Name>() == 24);

/// `policy`, [`SEP`], `key`: inline when it fits, on the heap otherwise.
pub(super) enum Name {
    /// The first `len` bytes of `bytes`; the rest are zero.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// A name longer than [`INLINE`].
    Heap(Box<[u8]>),
}

/// The name a check looks for, made before the shard is locked: the same
/// zero-padded bytes as [`Name::Inline`], so that comparing it with an entry
/// is one fixed-size comparison, or the parts of a name too long to be
/// inline. (Reading words of a buffer just written in pieces would stall
/// on the stores; taking the lock in between drains them.)
pub(super) enum Probe<'a> {
    /// As [`Name::Inline`].
    Inline {
        len: u8,
        bytes: [u8; INLINE],
        policy: &'a str,
        key: &'a str,
    },
    /// A name longer than [`INLINE`].
    Long { policy: &'a str, key: &'a str },
}

impl<'a> Probe<'a> {
    #[inline(always)]
    pub(super) fn new(policy: &'a str, key: &'a str) -> Probe<'a> {
        let (p, len) = (policy.len(), policy.len() + 1 + key.len());
        if len > INLINE {
            return Probe::Long { policy, key };
        }
        let mut bytes = [0; INLINE];
        put(&mut bytes, 0, policy.as_bytes());
        bytes[p] = SEP;
        put(&mut bytes, p + 1, key.as_bytes());
        Probe::Inline {
            len: len as u8,
            bytes,
            policy,
            key,
        }
    }

    fn parts(&self) -> (&'a [u8], &'a [u8]) {
        match *self {
            Probe::Inline { policy, key, .. } | Probe::Long { policy, key } => {
                (policy.as_bytes(), key.as_bytes())
            }
        }
    }

    /// The hash of the name, read from its parts where they lie; equal to
    /// [`Name::hash`] of the same name.
    #[inline(always)]
    pub(super) fn hash(&self, hasher: &impl BuildHasher) -> u64 {
        let (policy, key) = self.parts();
        hash_parts(hasher, policy, key)
    }

    /// The name to store.
    pub(super) fn to_name(&self) -> Name {
        match *self {
            Probe::Inline { len, bytes, .. } => Name::Inline { len, bytes },
            Probe::Long { policy, key } => {
                let mut name = Vec::with_capacity(policy.len() + 1 + key.len());
                name.extend_from_slice(policy.as_bytes());
                name.push(SEP);
                name.extend_from_slice(key.as_bytes());
                Name::Heap(name.into_boxed_slice())
            }
        }
    }
}

/// Copies `src` into `dst` at `at` (it fits: the caller checked) with
/// overlapping word moves: a memcpy call would cost more than the copy.
#[inline(always)]
fn put(dst: &mut [u8; INLINE], at: usize, src: &[u8]) {
    let n = src.len();
    if n >= 8 {
        dst[at..at + 8].copy_from_slice(&src[..8]);
        if n > 16 {
            dst[at + 8..at + 16].copy_from_slice(&src[8..16]);
        }
        dst[at + n - 8..at + n].copy_from_slice(&src[n - 8..]);
    } else if n >= 4 {
        dst[at..at + 4].copy_from_slice(&src[..4]);
        dst[at + n - 4..at + n].copy_from_slice(&src[n - 4..]);
    } else if n >= 2 {
        dst[at..at + 2].copy_from_slice(&src[..2]);
        dst[at + n - 2..at + n].copy_from_slice(&src[n - 2..]);
    } else if n == 1 {
        dst[at] = src[0];
    }
}

impl Name {
    /// Whether this is the name `probe` looks for.
    #[inline(always)]
    pub(super) fn is(&self, probe: &Probe<'_>) -> bool {
        match (self, probe) {
            // Zero-padded: one fixed-size comparison, no call to memcmp.
            (
                Name::Inline { len, bytes },
                Probe::Inline {
                    len: l, bytes: b, ..
                },
            ) => len == l && bytes == b,
            (Name::Heap(name), Probe::Long { policy, key }) => {
                let p = policy.len();
                name.len() == p + 1 + key.len()
                    && name[p] == SEP
                    && &name[..p] == policy.as_bytes()
                    && &name[p + 1..] == key.as_bytes()
            }
            // A name is inline exactly when it is short enough.
            _ => false,
        }
    }

    /// The hash of the name, as [`Probe::hash`] computes it.
    pub(super) fn hash(&self, hasher: &impl BuildHasher) -> u64 {
        let name = match self {
            Name::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Name::Heap(name) => name,
        };
        // The policy is UTF-8, so the first SEP ends it.
        let p = name.iter().position(|&b| b == SEP).unwrap_or(name.len());
        hash_parts(hasher, &name[..p], name.get(p + 1..).unwrap_or_default())
    }
}

#[inline(always)]
fn hash_parts(hasher: &impl BuildHasher, policy: &[u8], key: &[u8]) -> u64 {
    let mut h = hasher.build_hasher();
    h.write(policy);
    h.write_u8(SEP);
    h.write(key);
    h.finish()
}

/// A key's state and the fingerprint of the quota it was made under (a key
/// whose quota changed starts afresh instead of reading its old state in
/// the new units). [`algorithm::State`] with the fingerprint in each variant,
/// where it takes the room that padding after the tag would.
#[derive(Clone)]
pub(super) enum Slot {
    TokenBucket(u32, token_bucket::State),
    Gcra(u32, gcra::State),
    LeakyBucket(u32, leaky_bucket::State),
    FixedWindow(u32, fixed_window::State),
    SlidingWindowLog(u32, Box<sliding_window_log::State>),
    SlidingWindowCounter(u32, sliding_window_counter::State),
}

impl Slot {
    fn fingerprint(&self) -> u32 {
        match self {
            Slot::TokenBucket(f, _)
            | Slot::Gcra(f, _)
            | Slot::LeakyBucket(f, _)
            | Slot::FixedWindow(f, _)
            | Slot::SlidingWindowLog(f, _)
            | Slot::SlidingWindowCounter(f, _) => *f,
        }
    }

    /// The state, if it was made under the quota of `fingerprint`.
    pub(super) fn state(slot: Option<&Slot>, fingerprint: u32) -> Option<algorithm::State> {
        use algorithm::State;
        Some(match slot.filter(|s| s.fingerprint() == fingerprint)? {
            Slot::TokenBucket(_, s) => State::TokenBucket(*s),
            Slot::Gcra(_, s) => State::Gcra(*s),
            Slot::LeakyBucket(_, s) => State::LeakyBucket(*s),
            Slot::FixedWindow(_, s) => State::FixedWindow(*s),
            Slot::SlidingWindowLog(_, s) => State::SlidingWindowLog(s.clone()),
            Slot::SlidingWindowCounter(_, s) => State::SlidingWindowCounter(*s),
        })
    }

    /// [`algorithm::decide`] on an untouched key: the slot to store, if any.
    pub(super) fn fresh(
        fingerprint: u32,
        quota: &Quota,
        cost: u64,
        now_us: u64,
    ) -> (Decision, Option<Slot>) {
        let f = fingerprint;
        match quota.algorithm() {
            Algorithm::TokenBucket => {
                let (d, next) = token_bucket::decide(None, quota, cost, now_us);
                (d, next.map(|s| Slot::TokenBucket(f, s)))
            }
            Algorithm::Gcra => {
                let (d, next) = gcra::decide(None, quota, cost, now_us);
                (d, next.map(|s| Slot::Gcra(f, s)))
            }
            Algorithm::LeakyBucket => {
                let (d, next) = leaky_bucket::decide(None, quota, cost, now_us);
                (d, next.map(|s| Slot::LeakyBucket(f, s)))
            }
            Algorithm::FixedWindow => {
                let (d, next) = fixed_window::decide(None, quota, cost, now_us);
                (d, next.map(|s| Slot::FixedWindow(f, s)))
            }
            Algorithm::SlidingWindowLog => {
                let (d, next) = sliding_window_log::decide(None, quota, cost, now_us);
                (d, next.map(|s| Slot::SlidingWindowLog(f, Box::new(s))))
            }
            Algorithm::SlidingWindowCounter => {
                let (d, next) = sliding_window_counter::decide(None, quota, cost, now_us);
                (d, next.map(|s| Slot::SlidingWindowCounter(f, s)))
            }
        }
    }
}

impl Entry {
    /// [`algorithm::decide`] on this key's state, which is ignored unless it
    /// was made under the quota of `fingerprint`; writes the new state in
    /// place. Returns the decision and whether anything was written.
    ///
    /// Each arm calls the algorithm's own step on the state where it lies,
    /// so the decision is the algorithm's and nothing is copied on the way.
    #[inline(always)]
    pub(super) fn decide(
        &mut self,
        fingerprint: u32,
        quota: &Quota,
        cost: u64,
        now_us: u64,
    ) -> (Decision, bool) {
        let (decision, wrote) = match (quota.algorithm(), &mut self.slot) {
            (Algorithm::TokenBucket, Slot::TokenBucket(f, s)) if *f == fingerprint => {
                step(s, |s| token_bucket::decide(s, quota, cost, now_us))
            }
            (Algorithm::Gcra, Slot::Gcra(f, s)) if *f == fingerprint => {
                step(s, |s| gcra::decide(s, quota, cost, now_us))
            }
            (Algorithm::LeakyBucket, Slot::LeakyBucket(f, s)) if *f == fingerprint => {
                step(s, |s| leaky_bucket::decide(s, quota, cost, now_us))
            }
            (Algorithm::FixedWindow, Slot::FixedWindow(f, s)) if *f == fingerprint => {
                step(s, |s| fixed_window::decide(s, quota, cost, now_us))
            }
            (Algorithm::SlidingWindowLog, Slot::SlidingWindowLog(f, s)) if *f == fingerprint => {
                step(&mut **s, |s| {
                    sliding_window_log::decide(s, quota, cost, now_us)
                })
            }
            (Algorithm::SlidingWindowCounter, Slot::SlidingWindowCounter(f, s))
                if *f == fingerprint =>
            {
                step(s, |s| {
                    sliding_window_counter::decide(s, quota, cost, now_us)
                })
            }
            // Another quota's state: the key starts afresh.
            _ => match Slot::fresh(fingerprint, quota, cost, now_us) {
                (d, Some(slot)) => {
                    self.slot = slot;
                    (d, true)
                }
                (d, None) => (d, false),
            },
        };
        if wrote {
            self.expires_at_us = expiry(now_us, &decision);
        }
        (decision, wrote)
    }
}

/// One algorithm step on `state`, which it replaces when it returns a new one.
#[inline(always)]
fn step<S>(
    state: &mut S,
    decide: impl FnOnce(Option<&S>) -> (Decision, Option<S>),
) -> (Decision, bool) {
    match decide(Some(state)) {
        (d, Some(next)) => {
            *state = next;
            (d, true)
        }
        (d, None) => (d, false),
    }
}

/// When a key decided `decision` at `now_us` is back to its untouched state.
pub(super) fn expiry(now_us: u64, decision: &Decision) -> u64 {
    now_us.saturating_add(decision.reset_after.as_micros() as u64)
}
