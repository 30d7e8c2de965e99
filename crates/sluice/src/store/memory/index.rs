//! A shard's index: from the hash of a key's name to its entry's position.
//!
//! An open-addressing table with linear probing whose slots are 8 bytes:
//! the entry's position and the low 32 bits of its hash. A lookup reads
//! its slot and then the entry the slot points at, two dependent memory
//! accesses, where a SwissTable reads a control byte first and then the
//! slot (three with the entry). With millions of keys each of those is a
//! cache miss, so this is most of the cost of a check. The hash bits in the
//! slot stop a probe from reading any entry but the one it looks for (but
//! once in 2^32), and give each slot's home when the table grows, so that
//! no name is hashed again.
//!
//! Removal shifts the following slots back instead of leaving tombstones,
//! so a probe never walks over dead slots and the table never needs
//! cleaning.

/// A slot: `position << 32 | hash as u32`; an empty slot is all ones.
const EMPTY: u64 = u64::MAX;

/// The table grows past this load (3/4): linear probing stays short below it.
const MAX_LOAD: (usize, usize) = (3, 4);

/// The smallest table allocated.
const MIN_SLOTS: usize = 16;

pub(super) struct Index {
    /// A power of two slots, or none.
    slots: Vec<u64>,
    len: usize,
}

fn slot(hash: u64, position: u32) -> u64 {
    u64::from(position) << 32 | u64::from(hash as u32)
}

fn position(slot: u64) -> u32 {
    (slot >> 32) as u32
}

impl Index {
    pub(super) fn new() -> Index {
        Index {
            slots: Vec::new(),
            len: 0,
        }
    }

    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The slot of the entry with this `hash` for which `is` holds.
    #[inline(always)]
    fn find(&self, hash: u64, mut is: impl FnMut(u32) -> bool) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let tag = hash as u32;
        let mut i = tag as usize & mask;
        loop {
            let s = self.slots[i];
            if s == EMPTY {
                return None;
            }
            if s as u32 == tag && is(position(s)) {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The position of the entry with this `hash` for which `is` holds.
    #[inline(always)]
    pub(super) fn get(&self, hash: u64, is: impl FnMut(u32) -> bool) -> Option<u32> {
        self.find(hash, is).map(|i| position(self.slots[i]))
    }

    /// Adds an entry at `position`, which is not in the index.
    pub(super) fn insert(&mut self, hash: u64, position: u32) {
        if (self.len + 1) * MAX_LOAD.1 > self.slots.len() * MAX_LOAD.0 {
            self.resize((self.slots.len() * 2).max(MIN_SLOTS));
        }
        self.put(slot(hash, position));
        self.len += 1;
    }

    /// Places `s` in its first free slot from its home; there is one.
    fn put(&mut self, s: u64) {
        let mask = self.mask();
        let mut i = s as u32 as usize & mask;
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = s;
    }

    /// Moves every slot to a table of `slots` slots (a power of two that
    /// holds them below the maximum load).
    fn resize(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; slots]);
        for s in old.into_iter().filter(|&s| s != EMPTY) {
            self.put(s);
        }
    }

    /// Removes the entry with this `hash` for which `is` holds; returns its
    /// position.
    pub(super) fn remove(&mut self, hash: u64, is: impl FnMut(u32) -> bool) -> Option<u32> {
        let mut hole = self.find(hash, is)?;
        let removed = position(self.slots[hole]);
        // Shift back every following slot that may move into the hole (its
        // home is not cyclically after the hole), up to the next empty one.
        let mask = self.mask();
        let mut i = hole;
        loop {
            i = (i + 1) & mask;
            let s = self.slots[i];
            if s == EMPTY {
                break;
            }
            let home = s as u32 as usize & mask;
            let stays = if hole <= i {
                hole < home && home <= i
            } else {
                hole < home || home <= i
            };
            if !stays {
                self.slots[hole] = s;
                hole = i;
            }
        }
        self.slots[hole] = EMPTY;
        self.len -= 1;
        Some(removed)
    }

    /// Points the entry with this `hash` at `from` to `to` instead.
    pub(super) fn repoint(&mut self, hash: u64, from: u32, to: u32) {
        if let Some(i) = self.find(hash, |p| p == from) {
            self.slots[i] = slot(hash, to);
        }
    }

    /// The slots allocated.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    /// Gives back the memory beyond what the entries need.
    pub(super) fn shrink_to_fit(&mut self) {
        let slots = self.fitting();
        if self.len == 0 {
            self.slots = Vec::new();
        } else if slots < self.slots.len() {
            self.resize(slots);
        }
    }

    /// [`Index::shrink_to_fit`] when the table has four times the slots its
    /// entries need: a table that emptied gives its memory back, one that
    /// merely shrank a little is not rebuilt.
    pub(super) fn shrink_if_sparse(&mut self) {
        if self.slots.len() >= 4 * self.fitting() || self.len == 0 {
            self.shrink_to_fit();
        }
    }

    /// The fewest slots (a power of two) that hold the entries below the
    /// maximum load.
    fn fitting(&self) -> usize {
        let mut slots = MIN_SLOTS;
        while self.len * MAX_LOAD.1 > slots * MAX_LOAD.0 {
            slots *= 2;
        }
        slots
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Inserts and removals with colliding homes (few distinct low
        /// bits) keep every remaining entry findable.
        #[test]
        fn the_index_finds_what_it_holds(ops in proptest::collection::vec((0..64u64, any::<bool>()), 1..400)) {
            let mut index = Index::new();
            let mut model: HashMap<u64, u32> = HashMap::new();
            let mut next = 0u32;
            for (key, insert) in ops {
                // Hashes that share their low bits pile up in one run.
                let hash = (key % 5) | key << 40;
                let found = index.get(hash, |p| model.get(&key) == Some(&p));
                prop_assert_eq!(found, model.get(&key).copied());
                if insert && !model.contains_key(&key) {
                    index.insert(hash, next);
                    model.insert(key, next);
                    next += 1;
                } else if !insert {
                    let want = model.remove(&key);
                    let removed = index.remove(hash, |p| want == Some(p));
                    prop_assert_eq!(removed, want);
                }
                prop_assert_eq!(index.len, model.len());
                for (&k, &p) in &model {
                    let h = (k % 5) | k << 40;
                    prop_assert_eq!(index.get(h, |q| q == p), Some(p));
                }
            }
            index.shrink_to_fit();
            for (&k, &p) in &model {
                prop_assert_eq!(index.get((k % 5) | k << 40, |q| q == p), Some(p));
            }
        }
    }
}
