//! Query parameters, decoded strictly, and the size- and time-limited request body.

use std::borrow::Cow;
use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::Request;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use percent_encoding::percent_decode_str;
use registry_core::{validate_service_name, InstanceMeta};

use crate::error::{ApiError, Undecodable};
use crate::limits::Limits;

/// The query string of a request, decoded on demand.
pub struct Query<'a>(&'a str);

impl<'a> Query<'a> {
    /// The query of `request`.
    pub fn of<B>(request: &'a Request<B>) -> Self {
        Query(request.uri().query().unwrap_or(""))
    }

    /// A query string (`a=1&b=2`) taken apart already.
    pub fn parse(query: &'a str) -> Self {
        Query(query)
    }

    /// The first value of `name`, decoded as a form (`+` is a space, then percent-decoding);
    /// absent or empty is an error, and so is a value that is not UTF-8 once decoded
    /// (`x%FF` and `x%FE` must not both become `x\u{FFFD}`).
    pub fn required(&self, name: &'static str) -> Result<String, ApiError> {
        for pair in self.0.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let matches = key == name || (key.contains(['%', '+']) && decode(key).is_ok_and(|k| k == name));
            if !matches {
                continue;
            }
            let value = decode(value).map_err(|e| ApiError::Undecodable(name, e))?;
            return Some(value.into_owned())
                .filter(|v| !v.is_empty())
                .ok_or(ApiError::MissingParam(name));
        }
        Err(ApiError::MissingParam(name))
    }

    /// `service`, validated.
    pub fn service(&self) -> Result<String, ApiError> {
        let service = self.required("service")?;
        validate_service_name(&service)?;
        Ok(service)
    }

    /// `services=a,b,c`, each validated, duplicates dropped, order kept.
    pub fn services(&self) -> Result<Vec<String>, ApiError> {
        split_services(&self.required("services")?)
    }
}

/// The parameters of a read (`/findAll`, `/version`, `/versions`), found in one pass over
/// the query (the hot path of `/findAll` reads the query once): their raw, still encoded,
/// first values.
#[derive(Default)]
pub(crate) struct ReadQuery<'a> {
    service: Option<&'a str>,
    services: Option<&'a str>,
    consistent: Option<&'a str>,
    since: Option<&'a str>,
    wait: Option<&'a str>,
}

impl<'a> ReadQuery<'a> {
    /// Scans the query once. A key is decoded only when it has an escape in it.
    pub(crate) fn of<B>(request: &'a Request<B>) -> Self {
        Self::parse(request.uri().query().unwrap_or(""))
    }

    /// [`ReadQuery::of`] a query string.
    pub(crate) fn parse(query: &'a str) -> Self {
        let mut found = ReadQuery::default();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded;
            let key = if key.bytes().any(|b| b == b'%' || b == b'+') {
                decoded = decode(key).map(Cow::into_owned).unwrap_or_default();
                decoded.as_str()
            } else {
                key
            };
            let slot = match key {
                "service" => &mut found.service,
                "services" => &mut found.services,
                "consistent" => &mut found.consistent,
                "since" => &mut found.since,
                "wait" => &mut found.wait,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        found
    }

    /// `service`, decoded and validated.
    pub(crate) fn service(&self) -> Result<String, ApiError> {
        let service = value("service", self.service)?;
        validate_service_name(&service)?;
        Ok(service)
    }

    /// `services=a,b,c`, each validated, duplicates dropped, order kept.
    pub(crate) fn services(&self) -> Result<Vec<String>, ApiError> {
        split_services(&value("services", self.services)?)
    }

    /// `consistent=true|false` (any case); absent or empty is `false`.
    pub(crate) fn consistent(&self) -> Result<bool, ApiError> {
        let value = match value("consistent", self.consistent) {
            Ok(value) => value,
            Err(ApiError::MissingParam(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        if value.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if value.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(ApiError::BadRequest(format!(
                "query parameter 'consistent' must be true or false, got {value:?}"
            )))
        }
    }

    /// Whether the query has `since` (with any value): a blocking query.
    pub(crate) fn has_since(&self) -> bool {
        self.since.is_some()
    }

    /// The blocking-query parameters: `since=V` (a version) and `wait=D` (`500ms`, `30s`,
    /// `5m`, `1h`, or bare seconds; absent: `max_wait`), the wait cut to `max_wait`.
    /// `None` without `since`: answer at once.
    pub(crate) fn blocking(&self, max_wait: Duration) -> Result<Option<(u64, Duration)>, ApiError> {
        let since = match value("since", self.since) {
            Ok(since) => since,
            Err(ApiError::MissingParam(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let since: u64 = since.parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "query parameter 'since' must be a version (a whole number ≥ 0), got {since:?}"
            ))
        })?;
        let wait = match value("wait", self.wait) {
            Ok(wait) => parse_wait(&wait).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "query parameter 'wait' must be a duration such as 500ms, 30s, 5m or 1h, got {wait:?}"
                ))
            })?,
            Err(ApiError::MissingParam(_)) => max_wait,
            Err(e) => return Err(e),
        };
        Ok(Some((since, wait.min(max_wait))))
    }
}

/// A raw value decoded; absent or empty is [`ApiError::MissingParam`].
fn value(name: &'static str, raw: Option<&str>) -> Result<String, ApiError> {
    let raw = raw.ok_or(ApiError::MissingParam(name))?;
    let value = decode(raw).map_err(|e| ApiError::Undecodable(name, e))?;
    Some(value.into_owned())
        .filter(|v| !v.is_empty())
        .ok_or(ApiError::MissingParam(name))
}

/// `a,b,c`, each validated, duplicates dropped, order kept.
fn split_services(joined: &str) -> Result<Vec<String>, ApiError> {
    let mut services: Vec<String> = Vec::new();
    for name in joined.split(',') {
        validate_service_name(name)?;
        if !services.iter().any(|s| s == name) {
            services.push(name.to_owned());
        }
    }
    Ok(services)
}

pub use registry_core::parse_duration;

/// A `wait` parameter: a duration ([`parse_duration`]), or a bare number of seconds.
pub(crate) fn parse_wait(text: &str) -> Option<Duration> {
    registry_core::parse_duration_or_seconds(text)
}

/// One form-encoded component, decoded strictly: `+` is a space, every `%` is followed by
/// two hex digits, the result is UTF-8.
pub fn decode(text: &str) -> Result<Cow<'_, str>, Undecodable> {
    let bytes = text.as_bytes();
    // Nothing escaped (the usual case): the text is the value, already UTF-8.
    if !bytes.iter().any(|b| matches!(b, b'%' | b'+')) {
        return Ok(Cow::Borrowed(text));
    }
    let escapes_ok = bytes.iter().enumerate().filter(|(_, b)| **b == b'%').all(|(at, _)| {
        bytes
            .get(at + 1..at + 3)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !escapes_ok {
        return Err(Undecodable::BadEscape);
    }
    if text.contains('+') {
        let spaced = text.replace('+', " ");
        return Ok(Cow::Owned(percent_decode_str(&spaced).decode_utf8()?.into_owned()));
    }
    Ok(percent_decode_str(text).decode_utf8()?)
}

/// Reads the whole body, refusing one over `limits.max_body` bytes (at once when
/// `Content-Length` says so, otherwise as soon as the limit is crossed, without reading
/// the rest) and one that has not arrived within `limits.body_timeout`.
pub async fn read_body(request: Request<Incoming>, limits: &Limits) -> Result<Bytes, ApiError> {
    let max = limits.max_body;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(ApiError::PayloadTooLarge(max));
    }
    // A small body has usually arrived with the head: one poll takes it, and no timer
    // is armed; otherwise the rest must come within the body timeout.
    let mut collect = std::pin::pin!(Limited::new(request.into_body(), max).collect());
    let first = std::future::poll_fn(|cx| Poll::Ready(collect.as_mut().poll(cx))).await;
    let collected = match first {
        Poll::Ready(collected) => collected,
        Poll::Pending => match tokio::time::timeout(limits.body_timeout, collect).await {
            Ok(collected) => collected,
            Err(_) => return Err(ApiError::BodyTimeout(limits.body_timeout)),
        },
    };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(ApiError::PayloadTooLarge(max)),
        Err(e) => Err(ApiError::UnreadableBody(e.to_string())),
    }
}

/// The body as one instance.
pub(crate) fn instance(body: &[u8]) -> Result<InstanceMeta, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MissingBody);
    }
    Ok(InstanceMeta::from_json(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(query: &str, name: &'static str) -> Result<String, ApiError> {
        Query(query).required(name)
    }

    #[test]
    fn values_are_decoded_as_a_form() {
        assert_eq!(get("service=a.b", "service").unwrap(), "a.b");
        assert_eq!(get("x=1&service=caf%C3%A9", "service").unwrap(), "café");
        assert_eq!(get("service=a+b", "service").unwrap(), "a b");
        assert_eq!(get("servic%65=s", "service").unwrap(), "s", "names are decoded too");
        assert_eq!(get("service=first&service=second", "service").unwrap(), "first");
    }

    #[test]
    fn durations_and_blocking_parameters() {
        assert_eq!(parse_wait("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_wait("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_wait("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_wait("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_wait("1h"), Some(Duration::from_secs(3600)));
        for bad in ["", "s", "-1s", "1d", "1.5s", "99999999999999999999h"] {
            assert_eq!(parse_wait(bad), None, "{bad}");
        }
        let max = Duration::from_secs(60);
        assert_eq!(ReadQuery::parse("service=a").blocking(max).unwrap(), None);
        assert_eq!(ReadQuery::parse("since=3").blocking(max).unwrap(), Some((3, max)));
        assert_eq!(
            ReadQuery::parse("since=3&wait=2s").blocking(max).unwrap(),
            Some((3, Duration::from_secs(2)))
        );
        assert_eq!(
            ReadQuery::parse("since=3&wait=2h").blocking(max).unwrap(),
            Some((3, max))
        );
        assert!(ReadQuery::parse("since=x").blocking(max).is_err());
        assert!(ReadQuery::parse("since=1&wait=soon").blocking(max).is_err());
    }

    #[test]
    fn absent_empty_and_invalid_utf8_are_refused() {
        assert!(matches!(get("", "service"), Err(ApiError::MissingParam("service"))));
        assert!(matches!(
            get("service=", "service"),
            Err(ApiError::MissingParam("service"))
        ));
        assert!(matches!(
            get("service", "service"),
            Err(ApiError::MissingParam("service"))
        ));
        for bad in ["service=x%FF", "service=x%FE", "service=%C3", "service=%ED%A0%80"] {
            assert!(
                matches!(
                    get(bad, "service"),
                    Err(ApiError::Undecodable("service", Undecodable::NotUtf8))
                ),
                "{bad}"
            );
        }
        for bad in [
            "service=%ZZ",
            "service=a%",
            "service=a%4",
            "service=%%41",
            "service=a+%G0",
        ] {
            assert!(
                matches!(
                    get(bad, "service"),
                    Err(ApiError::Undecodable("service", Undecodable::BadEscape))
                ),
                "{bad}"
            );
        }
        // An invalid value of another parameter is not this one's concern.
        assert_eq!(get("other=%FF&service=s", "service").unwrap(), "s");
    }
}
