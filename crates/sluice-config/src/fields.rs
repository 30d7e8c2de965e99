//! Every field the library's sections accept, listed from the same
//! constants the readers check unknown fields against, so a sample or a
//! doc can be tested for covering them all.

use crate::{local_budget, memory, schema, tls};

/// Every field of the library's sections, as dotted paths from the top
/// (`redis.tls.ca`), mappings included (`redis`, `redis.tls`). A name the
/// user chooses is `*` (`policies.*.limit`, `policies.*.overrides.*.burst`)
/// and a list's element is `[]` (`policies.*.limits[].period`). Sorted.
pub fn fields() -> Vec<String> {
    let mut out = Vec::new();
    for top in schema::FIELDS {
        out.push((*top).to_owned());
        match *top {
            "redis" => {
                under(&mut out, "redis", schema::REDIS_FIELDS);
                under(&mut out, "redis.tls", tls::TLS_FIELDS);
            }
            "memory" => under(&mut out, "memory", memory::FIELDS),
            "policies" => {
                out.push("policies.*".to_owned());
                under(&mut out, "policies.*", schema::POLICY_FIELDS);
                under(&mut out, "policies.*.limits[]", schema::LIMIT_FIELDS);
                let budget = local_budget::LOCAL_BUDGET_FIELDS;
                under(&mut out, "policies.*.local_budget", budget);
                for limit in ["policies.*", "policies.*.limits[]"] {
                    let overrides = format!("{limit}.overrides.*");
                    out.push(overrides.clone());
                    under(&mut out, &overrides, schema::OVERRIDE_FIELDS);
                }
            }
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Adds `prefix.name` to `out` for each of `names`.
pub fn under(out: &mut Vec<String>, prefix: &str, names: &[&str]) {
    out.extend(names.iter().map(|n| format!("{prefix}.{n}")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_nested_fields_with_placeholders() {
        let fields = fields();
        for field in [
            "store",
            "redis.tls.ca",
            "policies.*.limits[].overrides.*.burst",
            "policies.*.overrides.*.limit",
            "memory.max_keys",
        ] {
            assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
        }
    }
}
