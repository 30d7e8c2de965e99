//! How a policy and a client's key become a Redis key.
//!
//! `{prefix}:{<key>}:<policy>`, where `<key>` is the client's
//! key with `%`, `{` and `}` percent-encoded. The braces make `<key>` the
//! Redis Cluster hash tag: every policy of one client lives in one slot, so
//! an all-or-nothing check over them is one script call. The encoding is
//! injective and leaves no `}` inside the tag, so no key can move itself to
//! another slot or collide with another policy's key, whatever bytes it
//! holds (colons and newlines are fine: Redis keys are binary-safe). The
//! key does not depend on the quota: a policy whose numbers change keeps
//! its keys, and each state is carried over to the new quota (the state
//! records the quota it was saved under; see `lua/carry.lua`).

/// The Redis key of `key` under `policy`.
pub fn state_key(prefix: &str, policy: &str, key: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + policy.len() + key.len() + 16);
    out.push_str(prefix);
    out.push_str(":{");
    escape_into(key, &mut out);
    out.push_str("}:");
    escape_into(policy, &mut out);
    out
}

/// The hash tag of a key made by [`state_key`]: keys with the same tag are
/// in the same Redis Cluster slot.
pub fn hash_tag(state_key: &str) -> &str {
    let start = state_key.find('{').map_or(0, |i| i + 1);
    let end = state_key[start..]
        .find('}')
        .map_or(state_key.len(), |i| start + i);
    &state_key[start..end]
}

fn escape_into(text: &str, out: &mut String) {
    // Most keys have nothing to escape: copy them whole.
    if !text.bytes().any(|b| matches!(b, b'%' | b'{' | b'}')) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_in_a_key_cannot_move_its_slot() {
        let k = state_key("sluice", "api", "a}{b");
        assert_eq!(k, "sluice:{a%7D%7Bb}:api");
        assert_eq!(hash_tag(&k), "a%7D%7Bb");
        // Every policy of one client shares the tag.
        assert_eq!(hash_tag(&state_key("sluice", "other", "a}{b")), "a%7D%7Bb");
    }

    #[test]
    fn distinct_inputs_give_distinct_keys() {
        let pairs = [
            ("api", "x"),
            ("api", "x}:api"),
            ("api", "%7D"),
            ("api", "}"),
            ("ap", "i:x"),
            ("api", "x\n"),
            ("api:x", ""),
        ];
        let keys: std::collections::HashSet<String> =
            pairs.iter().map(|(p, k)| state_key("s", p, k)).collect();
        assert_eq!(keys.len(), pairs.len());
    }
}
