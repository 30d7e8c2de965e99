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
    self, Step, fixed_window, gcra, leaky_bucket, sliding_window_counter, sliding_window_log,
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

/// The name a check looks for, made before the shard is locked: the
/// zero-padded bytes of [`Name::Inline`] as the three words [`words`] reads
/// from a stored name, so that comparing it with an entry is three word
/// comparisons, or the parts of a name too long to be inline.
///
/// The words are put together in registers from overlapping loads of the
/// parts, never written to memory byte by byte: reading a word of a buffer
/// just written in pieces stalls until the pieces have left the store
/// buffer (a store-forwarding stall; it took a fifth of the store's time
/// when the probe was a byte buffer).
pub(super) enum Probe<'a> {
    /// As [`Name::Inline`], in [`words`].
    Inline {
        len: u8,
        words: [u64; 3],
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
        // The little-endian limbs of the 24 bytes `policy`, SEP, `key`,
        // zeros: SEP and `key` (a shift by a constant), moved past `policy`
        // (the one shift by a length).
        let mut sep_key = shifted(read(key.as_bytes()), 1);
        sep_key[0] |= u64::from(SEP);
        let mut limbs = read(policy.as_bytes());
        let after = shifted(sep_key, p);
        for i in 0..3 {
            limbs[i] |= after[i];
        }
        Probe::Inline {
            len: len as u8,
            // Bytes 0..8, 8..16 and 14..22, as `words` reads them.
            words: [limbs[0], limbs[1], limbs[1] >> 48 | limbs[2] << 16],
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
            Probe::Inline { len, words, .. } => {
                let mut bytes = [0; INLINE];
                // The last word overlaps the second: they agree there.
                bytes[..8].copy_from_slice(&words[0].to_le_bytes());
                bytes[8..16].copy_from_slice(&words[1].to_le_bytes());
                bytes[INLINE - 8..].copy_from_slice(&words[2].to_le_bytes());
                Name::Inline { len, bytes }
            }
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

/// The words an inline name is compared by: its bytes `0..8`, `8..16` and
/// `14..22` (the last two overlap), little-endian.
#[inline(always)]
fn words(bytes: &[u8; INLINE]) -> [u64; 3] {
    [le64(bytes, 0), le64(bytes, 8), le64(bytes, INLINE - 8)]
}

/// The little-endian word at `at` of `s`, which has 8 bytes there.
#[inline(always)]
fn le64(s: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The little-endian half word at `at` of `s`, which has 4 bytes there.
#[inline(always)]
fn le32(s: &[u8], at: usize) -> u64 {
    let mut w = [0; 4];
    w.copy_from_slice(&s[at..at + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// `s` (at most [`INLINE`] bytes) as the little-endian limbs of 24 bytes,
/// zero-padded, from a few overlapping loads: where two loads overlap they
/// read the same bytes, so or-ing both in place is exact.
#[inline(always)]
fn read(s: &[u8]) -> [u64; 3] {
    let n = s.len();
    match n {
        0 => [0; 3],
        1..4 => {
            let (mid, last) = (n / 2, n - 1);
            let w =
                u64::from(s[0]) | u64::from(s[mid]) << (8 * mid) | u64::from(s[last]) << (8 * last);
            [w, 0, 0]
        }
        4..8 => [le32(s, 0) | le32(s, n - 4) << (8 * (n - 4)), 0, 0],
        8..=16 => {
            let v = u128::from(le64(s, 0)) | u128::from(le64(s, n - 8)) << (8 * (n - 8));
            [v as u64, (v >> 64) as u64, 0]
        }
        // 17 to 22 (the caller checked): the last load's bytes from 16 on.
        _ => [le64(s, 0), le64(s, 8), le64(s, n - 8) >> (8 * (24 - n))],
    }
}

/// `limbs` moved `by` bytes (less than 24) towards the most significant
/// end, as one 24-byte number; what goes past the end is dropped. Without
/// branches: a choice of limbs, then one shift of each with the bits
/// carried in from the limb below.
#[inline(always)]
fn shifted(limbs: [u64; 3], by: usize) -> [u64; 3] {
    let (q, r) = (by / 8, (by % 8) * 8);
    let [a, b, c] = match q {
        0 => limbs,
        1 => [0, limbs[0], limbs[1]],
        _ => [0, 0, limbs[0]],
    };
    // `>> 1 >> (63 - r)` is `>> (64 - r)`, and 0 (not an overflow) at r = 0.
    let carried = |limb: u64| limb >> 1 >> (63 - r);
    [a << r, b << r | carried(a), c << r | carried(b)]
}

impl Name {
    /// Whether this is the name `probe` looks for.
    #[inline(always)]
    pub(super) fn is(&self, probe: &Probe<'_>) -> bool {
        match (self, probe) {
            // Zero-padded: three word comparisons, no call to memcmp.
            (
                Name::Inline { len, bytes },
                Probe::Inline {
                    len: l, words: w, ..
                },
            ) => len == l && words(bytes) == *w,
            (Name::Heap(name), Probe::Long { policy, key }) => is_long(name, policy, key),
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

/// Whether the long name `name` is `policy`, [`SEP`], `key`: out of line,
/// so that the lookup of a short name, which inlines [`Name::is`], stays
/// small.
#[inline(never)]
fn is_long(name: &[u8], policy: &str, key: &str) -> bool {
    let p = policy.len();
    name.len() == p + 1 + key.len()
        && name[p] == SEP
        && &name[..p] == policy.as_bytes()
        && &name[p + 1..] == key.as_bytes()
}

#[inline(always)]
fn hash_parts(hasher: &impl BuildHasher, policy: &[u8], key: &[u8]) -> u64 {
    let mut h = hasher.build_hasher();
    h.write(policy);
    h.write_u8(SEP);
    h.write(key);
    h.finish()
}

/// How an algorithm's state sits in a [`Slot`].
trait Slotted: Step {
    /// `state` made under the quota of `fingerprint`, as a slot.
    fn into_slot(fingerprint: u32, state: Self::State) -> Slot;
    /// The fingerprint and the state in `slot`, if it is this algorithm's.
    fn in_slot(slot: &Slot) -> Option<(u32, &Self::State)>;
    /// [`Slotted::in_slot`], to change the state in place.
    fn in_slot_mut(slot: &mut Slot) -> Option<(u32, &mut Self::State)>;

    /// [`Step::decide_in_place`], the decision left [`Pending`]: by default
    /// built at once; the token bucket leaves it in raw numbers, so that
    /// the store builds it after releasing the shard's lock.
    #[inline(always)]
    fn decide_pending(
        state: &mut Self::State,
        quota: &Quota,
        cost: u64,
        now_us: u64,
    ) -> (Pending, bool) {
        let (decision, wrote) = Self::decide_in_place(state, quota, cost, now_us);
        (Pending::Built(decision), wrote)
    }
}

/// A decision made under a shard's lock, to be built once it is released:
/// the token bucket's raw numbers, or any other algorithm's decision.
pub(super) enum Pending {
    /// The decision, built.
    Built(Decision),
    /// The token bucket's numbers ([`token_bucket::Raw::decision`]).
    TokenBucket(token_bucket::Raw),
}

impl Pending {
    /// How long until the key is back to its untouched state, in whole
    /// microseconds: the decision's `reset_after`, for the entry's expiry.
    #[inline(always)]
    pub(super) fn reset_after_us(&self) -> u64 {
        match self {
            Pending::Built(decision) => decision.reset_after.as_micros() as u64,
            Pending::TokenBucket(raw) => raw.reset_after_us,
        }
    }

    /// The decision, built under `quota` (the quota it was made under).
    #[inline(always)]
    pub(super) fn decision(self, quota: &Quota) -> Decision {
        match self {
            Pending::Built(decision) => decision,
            Pending::TokenBucket(raw) => raw.decision(quota),
        }
    }
}

/// Declares [`Slot`] with one variant per algorithm, and how each
/// algorithm's state goes in and out of it.
macro_rules! slots {
    ($($variant:ident($stored:ty) $(= $pending:path)?),* $(,)?) => {
        /// A key's state and the fingerprint of the quota it was made under
        /// (a key whose quota changed is carried over to the new one, see
        /// the store's `carry`, instead of reading its old state in the new
        /// units). [`algorithm::State`] with the
        /// fingerprint in each variant, where it takes the room that padding
        /// after the tag would.
        #[derive(Clone)]
        pub(super) enum Slot {
            $($variant(u32, $stored),)*
        }

        $(
            impl Slotted for algorithm::$variant {
                fn into_slot(fingerprint: u32, state: Self::State) -> Slot {
                    Slot::$variant(fingerprint, state.into())
                }

                fn in_slot(slot: &Slot) -> Option<(u32, &Self::State)> {
                    match slot {
                        Slot::$variant(f, s) => Some((*f, std::borrow::Borrow::borrow(s))),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }

                #[inline(always)]
                fn in_slot_mut(slot: &mut Slot) -> Option<(u32, &mut Self::State)> {
                    match slot {
                        Slot::$variant(f, s) => Some((*f, std::borrow::BorrowMut::borrow_mut(s))),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }

                $(
                    #[inline(always)]
                    fn decide_pending(
                        state: &mut Self::State,
                        quota: &Quota,
                        cost: u64,
                        now_us: u64,
                    ) -> (Pending, bool) {
                        $pending(state, quota, cost, now_us)
                    }
                )?
            }
        )*

        impl Slot {
            /// The fingerprint of the quota the state was made under.
            pub(super) fn fingerprint(&self) -> u32 {
                match self {
                    $(Slot::$variant(f, _) => *f,)*
                }
            }

            /// The state, whichever quota it was made under.
            pub(super) fn any_state(&self) -> algorithm::State {
                match self {
                    $(Slot::$variant(_, s) => algorithm::State::$variant(s.clone()),)*
                }
            }

            /// `state` made under the quota of `fingerprint`, as a slot.
            pub(super) fn of(fingerprint: u32, state: algorithm::State) -> Slot {
                match state {
                    $(algorithm::State::$variant(s) => Slot::$variant(fingerprint, s),)*
                }
            }
        }

        /// Calls `visitor` with the step of `algorithm`, as
        /// [`algorithm::visit`] does, where the step is [`Slotted`] too.
        #[inline(always)]
        fn visit<V: SlotVisitor>(algorithm: Algorithm, visitor: V) -> V::Output {
            match algorithm {
                $(Algorithm::$variant => visitor.visit::<algorithm::$variant>(),)*
            }
        }
    };
}

/// The token bucket's step on a slot, its decision left in raw numbers.
#[inline(always)]
fn token_bucket_pending(
    state: &mut token_bucket::State,
    quota: &Quota,
    cost: u64,
    now_us: u64,
) -> (Pending, bool) {
    let (raw, wrote) = token_bucket::decide_raw(state, quota, cost, now_us);
    (Pending::TokenBucket(raw), wrote)
}

slots! {
    TokenBucket(token_bucket::State) = token_bucket_pending,
    Gcra(gcra::State),
    LeakyBucket(leaky_bucket::State),
    FixedWindow(fixed_window::State),
    SlidingWindowLog(Box<sliding_window_log::State>),
    SlidingWindowCounter(sliding_window_counter::State),
}

/// [`algorithm::Visitor`] for steps that are [`Slotted`].
trait SlotVisitor {
    type Output;
    fn visit<A: Slotted>(self) -> Self::Output;
}

impl Slot {
    /// [`algorithm::peek`] on the state in `slot` (ignored unless it was
    /// made under the quota of `fingerprint`), read where it lies: a peek
    /// copies no state (a sliding log's included).
    pub(super) fn peek(
        slot: Option<&Slot>,
        quota: &Quota,
        fingerprint: u32,
        cost: u64,
        now_us: u64,
    ) -> Decision {
        struct Peek<'a>(Option<&'a Slot>, &'a Quota, u32, u64, u64);
        impl SlotVisitor for Peek<'_> {
            type Output = Decision;
            fn visit<A: Slotted>(self) -> Self::Output {
                let state = self
                    .0
                    .and_then(A::in_slot)
                    .and_then(|(f, state)| (f == self.2).then_some(state));
                algorithm::peek_step::<A>(state, self.1, self.3, self.4)
            }
        }
        visit(
            quota.algorithm(),
            Peek(slot, quota, fingerprint, cost, now_us),
        )
    }

    /// [`algorithm::decide`] on an untouched key: the slot to store, if any.
    pub(super) fn fresh(
        fingerprint: u32,
        quota: &Quota,
        cost: u64,
        now_us: u64,
    ) -> (Decision, Option<Slot>) {
        struct Fresh<'a>(u32, &'a Quota, u64, u64);
        impl SlotVisitor for Fresh<'_> {
            type Output = (Decision, Option<Slot>);
            fn visit<A: Slotted>(self) -> Self::Output {
                let Fresh(f, quota, cost, now_us) = self;
                let (d, next) = A::decide(None, quota, cost, now_us);
                (d, next.map(|s| A::into_slot(f, s)))
            }
        }
        visit(quota.algorithm(), Fresh(fingerprint, quota, cost, now_us))
    }
}

/// How to take back one decision's write to a [`Slot`]: the slot as it
/// was (a few words for most algorithms), or, for a sliding log decided in
/// place, the mark that takes its admission back without copying the log.
pub(super) enum SlotUndo {
    /// The slot as it was.
    Whole(Slot),
    /// The log's newest entry before the admission.
    Log(Option<sliding_window_log::Entry>),
}

impl Slot {
    /// What [`Slot::undo`] needs to take back a decision under the quota
    /// of `algorithm` and `fingerprint` on this slot.
    pub(super) fn undo_point(&self, algorithm: Algorithm, fingerprint: u32) -> SlotUndo {
        match self {
            // Decided in place: the admission only touches the log's ends.
            Slot::SlidingWindowLog(f, log)
                if algorithm == Algorithm::SlidingWindowLog && *f == fingerprint =>
            {
                SlotUndo::Log(log.mark())
            }
            // Any other slot is a few words; a log of another quota is
            // replaced whole by the decision, so it is kept whole (once per
            // quota change).
            other => SlotUndo::Whole(other.clone()),
        }
    }

    /// Takes back the write made since `undo` was taken.
    pub(super) fn undo(&mut self, undo: SlotUndo) {
        match (undo, self) {
            (SlotUndo::Whole(slot), this) => *this = slot,
            (SlotUndo::Log(mark), Slot::SlidingWindowLog(_, log)) => log.retract(mark),
            // The mark of a log is only taken on a log that stays one.
            (SlotUndo::Log(_), _) => {}
        }
    }
}

impl Entry {
    /// [`algorithm::decide`] on this key's state, which is ignored unless it
    /// was made under the quota of `fingerprint`; writes the new state in
    /// place. Returns the decision, [`Pending`] (built by the caller, after
    /// the lock), and whether anything was written.
    ///
    /// The algorithm's own step runs on the state where it lies, so the
    /// decision is the algorithm's and nothing is copied on the way.
    #[inline(always)]
    pub(super) fn decide(
        &mut self,
        fingerprint: u32,
        quota: &Quota,
        cost: u64,
        now_us: u64,
    ) -> (Pending, bool) {
        struct InPlace<'a> {
            slot: &'a mut Slot,
            fingerprint: u32,
            quota: &'a Quota,
            cost: u64,
            now_us: u64,
        }
        impl SlotVisitor for InPlace<'_> {
            type Output = Option<(Pending, bool)>;
            #[inline(always)]
            fn visit<A: Slotted>(self) -> Self::Output {
                let (f, state) = A::in_slot_mut(self.slot)?;
                if f != self.fingerprint {
                    return None;
                }
                Some(A::decide_pending(state, self.quota, self.cost, self.now_us))
            }
        }
        let in_place = InPlace {
            slot: &mut self.slot,
            fingerprint,
            quota,
            cost,
            now_us,
        };
        let (decision, wrote) = match visit(quota.algorithm(), in_place) {
            Some(decided) => decided,
            // Another algorithm's state under this digest (the carry made
            // every other state this quota's): the key starts afresh.
            None => match Slot::fresh(fingerprint, quota, cost, now_us) {
                (d, Some(slot)) => {
                    self.slot = slot;
                    (Pending::Built(d), true)
                }
                (d, None) => (Pending::Built(d), false),
            },
        };
        if wrote {
            self.expires_at_us = now_us.saturating_add(decision.reset_after_us());
        }
        (decision, wrote)
    }
}

/// When a key decided `decision` at `now_us` is back to its untouched state.
pub(super) fn expiry(now_us: u64, decision: &Decision) -> u64 {
    now_us.saturating_add(decision.reset_after.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The name `policy`, [`SEP`], `key`, put together byte by byte.
    fn bytewise(policy: &str, key: &str) -> Vec<u8> {
        let mut name = policy.as_bytes().to_vec();
        name.push(SEP);
        name.extend_from_slice(key.as_bytes());
        name
    }

    fn stored(name: &Name) -> Vec<u8> {
        match name {
            Name::Inline { len, bytes } => {
                // Zero past the name: the probes' words compare the padding too.
                assert!(bytes[usize::from(*len)..].iter().all(|&b| b == 0));
                bytes[..usize::from(*len)].to_vec()
            }
            Name::Heap(name) => name.to_vec(),
        }
    }

    proptest! {
        /// The probe's words, put together from overlapping loads and
        /// shifts, are the name's bytes at every length of policy and key,
        /// and a probe finds its own name and no other.
        #[test]
        fn a_probe_is_its_name_byte_for_byte(
            policy in "[a-z]{1,24}",
            key in "[a-zA-Z0-9-]{1,24}",
            other in "[a-zA-Z0-9-]{1,24}",
        ) {
            let probe = Probe::new(&policy, &key);
            let name = probe.to_name();
            prop_assert_eq!(stored(&name), bytewise(&policy, &key));
            prop_assert_eq!(
                matches!(name, Name::Inline { .. }),
                policy.len() + 1 + key.len() <= INLINE
            );
            prop_assert!(name.is(&probe));
            let hasher = foldhash::fast::FixedState::with_seed(7);
            prop_assert_eq!(name.hash(&hasher), probe.hash(&hasher));
            prop_assert_eq!(name.is(&Probe::new(&policy, &other)), other == key);
            let moved = format!("{policy}{}", &key[..1]);
            prop_assert!(!name.is(&Probe::new(&moved, &key[1..])));
        }
    }

    #[test]
    fn every_split_of_an_inline_name_is_found() {
        let bytes: Vec<u8> = (0..INLINE as u8).map(|i| b'a' + i).collect();
        for len in 2..=INLINE {
            for p in 1..len - 1 {
                let policy = std::str::from_utf8(&bytes[..p]).unwrap();
                let key = std::str::from_utf8(&bytes[p..len - 1]).unwrap();
                let probe = Probe::new(policy, key);
                let name = probe.to_name();
                assert_eq!(stored(&name), bytewise(policy, key), "{policy} {key}");
                assert!(name.is(&probe));
            }
        }
    }
}
