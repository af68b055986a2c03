//! gzip for large answers (`/findAll`, `/snapshot`, a facade's), when the request asks for it.

use std::io::Write;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, VARY};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::answer::json;
use crate::body::Body;

/// Answers smaller than this go uncompressed: gzip would save little and cost a header.
const GZIP_MIN_BYTES: usize = 1024;

/// Whether an answer of `len` bytes is to be compressed: it is large, and the request
/// `accepts` gzip (asked only for a large answer, so that a small `/findAll` does not even
/// look at the request's headers).
pub fn worth_gzip(len: usize, accepts: impl FnOnce() -> bool) -> bool {
    len >= GZIP_MIN_BYTES && accepts()
}

/// Whether `Accept-Encoding` lists gzip (or `*`) without `q=0`.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(ACCEPT_ENCODING).iter().any(|value| {
        let bytes = value.as_bytes();
        // Most clients send no Accept-Encoding, or one without gzip: no parsing for them.
        if !bytes.contains(&b'*') && !bytes.windows(4).any(|w| w.eq_ignore_ascii_case(b"gzip")) {
            return false;
        }
        value.to_str().unwrap_or("").split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            !refused && (coding.eq_ignore_ascii_case("gzip") || coding == "*")
        })
    })
}

/// `body` gzip-compressed.
pub fn gzip(body: &[u8]) -> Bytes {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    Bytes::from(encoder.finish().unwrap_or_default())
}

/// Marks an answer whose body is gzip-compressed. `Vary: Accept-Encoding` keeps caches
/// from handing it to a client that did not ask for it (an uncompressed answer is fit
/// for every client and carries no `Vary`).
pub fn gzipped(mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    headers.insert(VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// A JSON answer of `body`, gzip-compressed when `compress` ([`worth_gzip`]).
pub(crate) fn json_maybe_gzip(compress: bool, status: StatusCode, body: Bytes) -> Response<Body> {
    if compress {
        gzipped(json(status, gzip(&body)))
    } else {
        json(status, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_str(accept).unwrap());
        h
    }

    #[test]
    fn gzip_is_sent_only_when_asked_for() {
        assert!(accepts_gzip(&headers("gzip")));
        assert!(accepts_gzip(&headers("deflate, GZIP;q=0.5")));
        assert!(accepts_gzip(&headers("*")));
        assert!(!accepts_gzip(&headers("gzip;q=0")));
        assert!(!accepts_gzip(&headers("br, deflate")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
