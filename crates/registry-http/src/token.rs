use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::HttpInvokeError;
use crate::invoker::{HttpInvoker, HttpRequest, HttpResponse};

/// A shared secret (`--cluster-token`, `--client-token`). Its `Debug` and `Display` never
/// show it, so that it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl Token {
    /// `secret` as a token; `None` when it is empty (or only whitespace).
    pub fn new(secret: &str) -> Option<Token> {
        let secret = secret.trim();
        (!secret.is_empty()).then(|| Token(Arc::from(secret)))
    }

    /// The `Authorization` header value that carries it.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Whether an `Authorization` header value carries this token: `Bearer <token>`,
    /// compared in constant time (the time taken does not depend on where the two
    /// differ, only on their lengths).
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(presented) = value
            .strip_prefix(b"Bearer ")
            .or_else(|| value.strip_prefix(b"bearer "))
        else {
            return false;
        };
        self.is(presented)
    }

    /// Whether `presented` (the token itself, however it was carried) is this token,
    /// compared in constant time.
    pub fn is(&self, presented: &[u8]) -> bool {
        constant_time_eq(presented, self.0.as_bytes())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Equality of two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    // Keep the compiler from turning the loop into an early exit.
    std::hint::black_box(diff) == 0
}

/// An [`HttpInvoker`] that sends every request with `Authorization: Bearer <token>`:
/// how a node of a cluster with `--cluster-token` calls its peers.
pub struct WithToken {
    inner: Arc<dyn HttpInvoker>,
    authorization: String,
}

impl WithToken {
    /// `inner`, with `token` on every request.
    pub fn new(inner: Arc<dyn HttpInvoker>, token: &Token) -> Self {
        WithToken {
            inner,
            authorization: token.bearer(),
        }
    }
}

#[async_trait]
impl HttpInvoker for WithToken {
    async fn send(&self, mut request: HttpRequest) -> Result<HttpResponse, HttpInvokeError> {
        request.headers.push(("authorization", self.authorization.clone()));
        self.inner.send(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_bearer_of_this_token() {
        let token = Token::new("s3cret").unwrap();
        assert!(token.accepts(Some(b"Bearer s3cret")));
        assert!(!token.accepts(None));
        assert!(!token.accepts(Some(b"Bearer s3cre")));
        assert!(!token.accepts(Some(b"Bearer s3cret!")));
        assert!(!token.accepts(Some(b"Basic s3cret")));
        assert!(!token.accepts(Some(b"s3cret")));
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
        assert!(Token::new("  ").is_none());
    }
}
