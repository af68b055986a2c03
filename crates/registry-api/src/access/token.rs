//! Login tokens (docs/spec.md §9.2): a JSON Web Token over `{"sub": user, "exp": seconds}`,
//! signed HS256 with the cluster-wide secret, so that any node with the same secret
//! accepts a token any other issued. It carries the user's name and when it expires,
//! nothing secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// The header every token carries: `{"alg":"HS256","typ":"JWT"}`, encoded.
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// The shortest secret accepted, in bytes (Nacos asks for 32 too).
pub const MIN_SECRET_LEN: usize = 32;

/// The longest token looked at: a longer one is refused unread.
const MAX_TOKEN_LEN: usize = 1024;

#[derive(Serialize, Deserialize)]
struct Claims<'a> {
    sub: &'a str,
    exp: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not one of ours: malformed, or signed with another secret.
    Invalid,
    /// Ours, past its expiry.
    Expired,
}

/// Signs and checks tokens with one secret.
pub struct TokenKey {
    key: hmac::Key,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// A key over `secret`, which must be at least [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: &[u8]) -> Result<TokenKey, String> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!(
                "the token secret must be at least {MIN_SECRET_LEN} bytes, it has {}",
                secret.len()
            ));
        }
        Ok(TokenKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        })
    }

    /// A key over a random secret: tokens only this process accepts.
    pub fn random() -> TokenKey {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, &[0; 32]));
        TokenKey { key }
    }

    /// A token for `user`, valid until `exp` (seconds since the epoch).
    pub fn sign(&self, user: &str, exp: u64) -> String {
        let claims = serde_json::to_vec(&Claims { sub: user, exp }).unwrap_or_default();
        let mut token = String::with_capacity(HEADER.len() + claims.len() * 4 / 3 + 48);
        token.push_str(HEADER);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut token);
        let signature = hmac::sign(&self.key, token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut token);
        token
    }

    /// The user a token names, if it is ours and not expired at `now` (seconds).
    pub fn verify(&self, token: &str, now: u64) -> Result<String, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        let (signed, signature) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let (header, claims) = signed.split_once('.').ok_or(TokenError::Invalid)?;
        if header != HEADER {
            return Err(TokenError::Invalid);
        }
        let mut raw = [0u8; 64];
        let len = URL_SAFE_NO_PAD
            .decode_slice(signature, &mut raw)
            .map_err(|_| TokenError::Invalid)?;
        hmac::verify(&self.key, signed.as_bytes(), &raw[..len]).map_err(|_| TokenError::Invalid)?;
        let claims = URL_SAFE_NO_PAD.decode(claims).map_err(|_| TokenError::Invalid)?;
        let claims: Claims<'_> = serde_json::from_slice(&claims).map_err(|_| TokenError::Invalid)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims.sub.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_names_its_user_until_it_expires() {
        let key = TokenKey::new(SECRET).unwrap();
        let token = key.sign("nacos", 1_000);
        assert_eq!(key.verify(&token, 999), Ok("nacos".to_owned()));
        assert_eq!(key.verify(&token, 1_000), Err(TokenError::Expired));
        assert!(!token.contains("0123456789abcdef"), "the secret is not in the token");
    }

    #[test]
    fn another_secret_or_a_changed_token_is_refused() {
        let key = TokenKey::new(SECRET).unwrap();
        let other = TokenKey::new(b"another secret of at least 32 bytes!").unwrap();
        let token = key.sign("nacos", 1_000);
        assert_eq!(other.verify(&token, 0), Err(TokenError::Invalid));
        let (signed, _) = token.rsplit_once('.').unwrap();
        let forged_claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin","exp":9999}"#);
        let forged = format!("{HEADER}.{forged_claims}.{}", token.rsplit_once('.').unwrap().1);
        assert_eq!(key.verify(&forged, 0), Err(TokenError::Invalid));
        for bad in ["", ".", "..", "a.b.c", signed, "AUTH_DISABLED", &"x".repeat(5000)] {
            assert_eq!(key.verify(bad, 0), Err(TokenError::Invalid), "{bad:?}");
        }
        assert!(TokenKey::new(b"short").is_err());
    }
}
