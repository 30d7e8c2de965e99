//! A policy's `local_budget: {max_overshoot: 0.01, instances: 3}`: the
//! slices of a hot key's allowance each instance may spend locally (see
//! `sluice::store::LocalBudgets`).

use marked_yaml::Node;
use sluice::LocalBudget;

use crate::yaml::{Walker, join};

/// The fields of `local_budget`, both required.
pub(crate) const LOCAL_BUDGET_FIELDS: &[&str] = &["max_overshoot", "instances"];

/// Reads the `local_budget` at `node` (under the policy at `path`). `None`
/// when it is invalid (already reported).
pub(crate) fn local_budget(w: &mut Walker<'_>, node: &Node, path: &str) -> Option<LocalBudget> {
    let path = join(path, "local_budget");
    let map = w.mapping(node, &path, LOCAL_BUDGET_FIELDS)?;
    let mut ok = true;
    for name in LOCAL_BUDGET_FIELDS {
        if map.get_node(name).is_none() {
            w.error(map.span(), &join(&path, name), "missing field");
            ok = false;
        }
    }
    let overshoot_path = join(&path, "max_overshoot");
    let overshoot = map.get_node("max_overshoot").and_then(|node| {
        let share = w.parsed::<f64>(node, &overshoot_path, "a fraction such as 0.01")?;
        if share > 0.0 && share <= 1.0 {
            Some(share)
        } else {
            let message = format!("must be above 0 and at most 1, got {share}");
            w.error(node.span(), &overshoot_path, message);
            None
        }
    });
    let instances_path = join(&path, "instances");
    let instances = map.get_node("instances").and_then(|node| {
        let n = w.positive(node, &instances_path)?;
        match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => {
                let message = format!("must be at most {}, got {n}", u32::MAX);
                w.error(node.span(), &instances_path, message);
                None
            }
        }
    });
    if !ok {
        return None;
    }
    // Both checked above, so the budget is valid.
    LocalBudget::new(overshoot?, instances?).ok()
}
