//! The bearer token: kept as its SHA-256, compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::*;

/// The server's bearer token, kept only as its SHA-256 (never logged, and
/// compared in constant time).
#[derive(Clone)]
pub struct Token {
    digest: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Fewest characters a token may have.
pub const MIN_TOKEN_LEN: usize = 16;

impl Token {
    /// A token from its text (surrounding whitespace ignored): at least
    /// [`MIN_TOKEN_LEN`] visible ASCII characters. The error says what is
    /// wrong, never the token.
    pub fn new(secret: &str) -> Result<Token, String> {
        let secret = secret.trim();
        if secret.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "the token has {} characters, fewer than {MIN_TOKEN_LEN}: use a long random one, \
                 e.g. `openssl rand -hex 32`",
                secret.len()
            ));
        }
        if !secret.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "the token must be visible ASCII characters without spaces (it is sent \
                        in an HTTP header): e.g. `openssl rand -hex 32`"
                    .into(),
            );
        }
        Ok(Token {
            digest: Sha256::digest(secret.as_bytes()).into(),
        })
    }

    /// Is `presented` this token? Constant time in the token's content.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        bool::from(self.digest.ct_eq(&digest))
    }
}

/// The token check (see the module docs). `/health` and the web UI's
/// static files (`/ui/...`, which hold no data; the API calls they make need
/// the token) are always open.
pub fn check_token(path: &str, headers: &HeaderMap, token: Option<&Token>) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Ok(());
    };
    if path == "/health" || crate::api::ui::is_ui_path(path) {
        return Ok(());
    }
    let unauthorized = |what: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "{what}: this server needs a token; send `Authorization: Bearer <token>` (with \
                 the `hume` CLI: set HUME_TOKEN or pass --token)"
            ),
        )
    };
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized("no `Authorization` header"));
    };
    let value = value.as_bytes();
    let credentials = match value.iter().position(|&b| b == b' ') {
        Some(space) if value[..space].eq_ignore_ascii_case(b"bearer") => {
            value[space + 1..].trim_ascii()
        }
        _ => {
            return Err(unauthorized(
                "the `Authorization` header is not `Bearer <token>`",
            ))
        }
    };
    if token.matches(credentials) {
        Ok(())
    } else {
        Err(unauthorized("wrong token in the `Authorization` header"))
    }
}
