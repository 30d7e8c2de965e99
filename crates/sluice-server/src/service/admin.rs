//! The admin token: the bearer token that unlocks the admin operations
//! (`DELETE /v1/limits` over HTTP).

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A secret compared in constant time, so the time an answer takes tells
/// an attacker nothing about how much of a guess was right, nor how long
/// the token is.
///
/// Only the token's SHA-256 digest is kept, and a guess is digested too
/// before the two digests (always 32 bytes) are compared with
/// [`subtle`]: comparing the raw bytes would return at once on a length
/// mismatch (as `subtle` does for slices of different lengths), and the
/// time taken would then reveal the token's length. Digesting a guess
/// takes time that depends on the guess alone.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

/// The admin token is empty once trimmed: blank, or only spaces and
/// newlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the admin token is empty (only spaces or newlines)")]
pub struct EmptyToken;

impl AdminToken {
    /// The token `secret`, trimmed the way secrets are written: surrounding
    /// spaces, tabs and newlines (a secrets file's trailing newline, a
    /// quoted value with a stray space) are not part of it. A token that
    /// is empty once trimmed is refused: it would turn the admin API on
    /// with a token no request can present.
    pub fn new(secret: &str) -> Result<AdminToken, EmptyToken> {
        let secret = trim_secret(secret);
        if secret.is_empty() {
            return Err(EmptyToken);
        }
        Ok(AdminToken {
            digest: Sha256::digest(secret.as_bytes()).into(),
        })
    }

    /// Whether an `Authorization` header value is `Bearer <this token>`.
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(given) = authorization.and_then(|v| strip_bearer(v)) else {
            return false;
        };
        let given: [u8; 32] = Sha256::digest(given).into();
        bool::from(given.ct_eq(&self.digest))
    }
}

/// Never shows the secret (nor its digest, which a dictionary would
/// reverse for a weak token), so a token that reaches a log says nothing.
impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// A secret as written in an environment variable or a file, without
/// the whitespace around it: `" s3cret\n"` is `s3cret`.
pub fn trim_secret(secret: &str) -> &str {
    secret.trim()
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
        let token = AdminToken::new("s3cret").unwrap();
        assert!(token.admits(Some(b"Bearer s3cret")));
        assert!(token.admits(Some(b"bearer  s3cret ")));
        assert!(!token.admits(Some(b"Bearer s3cre")));
        assert!(!token.admits(Some(b"Bearer s3cretX")));
        assert!(!token.admits(Some(b"Bearer S3CRET")));
        assert!(!token.admits(Some(b"Basic s3cret")));
        assert!(!token.admits(Some(b"s3cret")));
        assert!(!token.admits(Some(b"Bearer ")));
        assert!(!token.admits(None));
    }

    #[test]
    fn issue_12_a_token_from_a_secrets_file_is_trimmed() {
        for written in ["s3cret\n", "  s3cret  ", "\ts3cret\r\n", "s3cret"] {
            let token = AdminToken::new(written).unwrap();
            assert!(token.admits(Some(b"Bearer s3cret")), "{written:?}");
        }
        // Inner spaces are part of the token.
        let token = AdminToken::new(" two words\n").unwrap();
        assert!(token.admits(Some(b"Bearer two words")));
        assert!(!token.admits(Some(b"Bearer twowords")));
    }

    #[test]
    fn issue_12_an_empty_token_is_refused() {
        for blank in ["", " ", "\n", " \t\r\n "] {
            assert_eq!(AdminToken::new(blank).unwrap_err(), EmptyToken, "{blank:?}");
        }
    }

    #[test]
    fn the_token_never_shows() {
        let token = AdminToken::new("s3cret").unwrap();
        assert_eq!(format!("{token:?}"), "AdminToken(***)");
    }
}
