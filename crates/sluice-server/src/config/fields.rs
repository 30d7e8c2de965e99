//! Every field the server's file accepts: the library's (from
//! [`sluice_config::fields`]) and the server's own, listed from the same
//! constants the readers check unknown fields against, so a sample or a doc
//! can be tested for covering them all.

use sluice_config::fields::under;

use super::{envoy_settings, file, forward_auth, grpc, server};

/// Every field of the configuration file, as dotted paths from the top
/// (`redis.tls.ca`), mappings included; a name the user chooses is `*` and
/// a list's element is `[]` (see [`sluice_config::fields::fields`]). Sorted.
pub fn fields() -> Vec<String> {
    let mut out = sluice_config::fields::fields();
    for top in file::SERVER_FIELDS {
        out.push((*top).to_owned());
        match *top {
            "server" => under(&mut out, "server", server::FIELDS),
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
    fn lists_the_library_fields_and_the_servers() {
        let fields = fields();
        for field in [
            "redis.tls.ca",
            "policies.*.limits[].period",
            "forward_auth.routes[].methods",
            "grpc.listen",
        ] {
            assert!(fields.iter().any(|f| f == field), "{field} in {fields:?}");
        }
    }
}
