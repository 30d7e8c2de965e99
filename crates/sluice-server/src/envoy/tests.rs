use super::counter_key;

/// No two different counters share a store key, whatever their text holds.
#[test]
fn counter_keys_are_unambiguous() {
    let keys = [
        counter_key("rl", &[("a_b", "c")]),
        counter_key("rl", &[("a", "b_c")]),
        counter_key("rl", &[("a", "b"), ("c", "")]),
        counter_key("rl", &[("a", "b:c")]),
        counter_key("rl", &[("a", "b"), ("c", "d")]),
        counter_key("rl", &[("a", "b1:c1:d")]),
        counter_key("rl_a", &[("b", "c")]),
        counter_key("rl", &[("a", "")]),
        counter_key("rl", &[("", "a")]),
    ];
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            assert_ne!(a, b);
        }
    }
}
