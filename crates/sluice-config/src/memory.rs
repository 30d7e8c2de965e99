//! `memory`: how many keys Sluice keeps in this process's memory.

use std::num::NonZeroUsize;

use marked_yaml::Node;

use crate::yaml::{Walker, join};

/// The bound on the keys kept in process memory: the memory store's, or,
/// with a Redis store, the local store that `on_store_error: local` decides
/// in while Redis is away. Beyond it each new key evicts one that is
/// soonest back to its untouched state ([`sluice::MemoryStore::with_max_keys`]),
/// so a flood of distinct keys cannot grow the memory without bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemorySettings {
    /// The most keys held at once.
    pub max_keys: NonZeroUsize,
}

impl Default for MemorySettings {
    /// 1,000,000 keys: about 85 MB with keys of up to 22 bytes, and at most
    /// 1.2 GB with every key at the longest a request may send (1 KiB).
    fn default() -> MemorySettings {
        MemorySettings {
            max_keys: NonZeroUsize::MIN.saturating_add(999_999),
        }
    }
}

pub(crate) const FIELDS: &[&str] = &["max_keys"];

/// Reads the `memory` mapping at `node` over the defaults; invalid fields
/// are reported and keep their default.
pub(crate) fn memory(w: &mut Walker<'_>, node: &Node) -> MemorySettings {
    let mut settings = MemorySettings::default();
    let Some(map) = w.mapping(node, "memory", FIELDS) else {
        return settings;
    };
    if let Some(node) = map.get_node("max_keys")
        && let Some(n) = w.positive(node, &join("memory", "max_keys"))
    {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        settings.max_keys = NonZeroUsize::new(n).unwrap_or(settings.max_keys);
    }
    settings
}
