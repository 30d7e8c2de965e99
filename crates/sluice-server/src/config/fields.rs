//! Every field the file accepts, listed from the same constants the
//! readers check unknown fields against, so a sample or a doc can be
//! tested for covering them all.

use super::{envoy_settings, forward_auth, grpc, memory, schema, server, tls};

/// Every field of the configuration file, as dotted paths from the top
/// (`redis.tls.ca`), mappings included (`redis`, `redis.tls`). A name the
/// user chooses is `*` (`policies.*.limit`, `policies.*.overrides.*.burst`)
/// and a list's element is `[]` (`policies.*.limits[].period`).
pub fn fields() -> Vec<String> {
    let mut out = Vec::new();
    for top in schema::TOP_FIELDS {
        out.push((*top).to_owned());
        let under = |out: &mut Vec<String>, prefix: &str, names: &[&str]| {
            out.extend(names.iter().map(|n| format!("{prefix}.{n}")));
        };
        match *top {
            "redis" => {
                under(&mut out, "redis", schema::REDIS_FIELDS);
                under(&mut out, "redis.tls", tls::TLS_FIELDS);
            }
            "server" => under(&mut out, "server", server::FIELDS),
            "memory" => under(&mut out, "memory", memory::FIELDS),
            "grpc" => under(&mut out, "grpc", grpc::FIELDS),
            "envoy" => under(&mut out, "envoy", envoy_settings::FIELDS),
            "forward_auth" => {
                under(&mut out, "forward_auth", forward_auth::FIELDS);
                under(
                    &mut out,
                    "forward_auth.routes[]",
                    forward_auth::ROUTE_FIELDS,
                );
            }
            "policies" => {
                out.push("policies.*".to_owned());
                under(&mut out, "policies.*", schema::POLICY_FIELDS);
                under(&mut out, "policies.*.limits[]", schema::LIMIT_FIELDS);
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
            "forward_auth.routes[].methods",
            "memory.max_keys",
        ] {
            assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
        }
    }
}
