//! The admin token: the bearer token that unlocks the admin operations
//! (`DELETE /v1/limits` over HTTP).

use subtle::ConstantTimeEq;

/// A secret compared in constant time, so the time an answer takes tells
/// an attacker nothing about how much of a guess was right.
pub struct AdminToken(Vec<u8>);

impl AdminToken {
    /// The token `secret`.
    pub fn new(secret: String) -> AdminToken {
        AdminToken(secret.into_bytes())
    }

    /// Whether an `Authorization` header value is `Bearer <this token>`.
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(given) = authorization.and_then(|v| strip_bearer(v)) else {
            return false;
        };
        bool::from(given.ct_eq(&self.0))
    }
}

/// The credentials of a `Bearer` authorization; the scheme is
/// case-insensitive (RFC 9110 §11.1).
fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| rest.trim_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_only_the_exact_bearer_token() {
        let token = AdminToken::new("s3cret".into());
        assert!(token.admits(Some(b"Bearer s3cret")));
        assert!(token.admits(Some(b"bearer  s3cret ")));
        assert!(!token.admits(Some(b"Bearer s3cre")));
        assert!(!token.admits(Some(b"Bearer s3cretX")));
        assert!(!token.admits(Some(b"Basic s3cret")));
        assert!(!token.admits(Some(b"s3cret")));
        assert!(!token.admits(Some(b"Bearer ")));
        assert!(!token.admits(None));
    }
}
