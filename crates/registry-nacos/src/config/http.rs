//! What the config service's HTTP answers share: plain text and JSON with Nacos's no-cache
//! headers, HTTP dates, pages, reading a form, and refusals.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CACHE_CONTROL, EXPIRES, PRAGMA};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;

use registry_api::answer::{json, typed};
use registry_api::headers::TEXT;
use registry_api::request::read_body;
use registry_api::{App, Body, FacadeError};

use crate::v1::Params;

/// An answer or a refusal.
pub(crate) type Answer = Result<Response<Body>, FacadeError>;

/// A refusal as the config service answers it: the status and the message as text.
pub(crate) fn refusal(e: FacadeError) -> Response<Body> {
    e.into_response(str::to_owned)
}

/// `body` as text, not to be cached.
pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    no_cache(typed(status, body.into(), TEXT))
}

/// `value` as JSON, not to be cached.
pub(crate) fn ok_json<T: Serialize + ?Sized>(value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    no_cache(json(StatusCode::OK, Bytes::from(body)))
}

/// Nacos's no-cache headers.
pub(crate) fn no_cache(mut response: Response<Body>) -> Response<Body> {
    let headers = response.headers_mut();
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(EXPIRES, HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache,no-store"));
    response
}

/// Adds `name: value` when the value can be a header (a config's fields are checked text,
/// so only a control character could stop it).
pub(crate) fn header(response: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(HeaderName::from_static(name), value);
    }
}

/// A request's parameters: its query, then its form body (read within the config limits,
/// which hold the largest content), which must be UTF-8.
pub(crate) async fn form(app: &App, request: Request<Incoming>) -> Result<Params, FacadeError> {
    let query = request.uri().query().unwrap_or("").to_owned();
    let body = read_body(request, &app.limits().for_configs()).await?;
    let text = std::str::from_utf8(&body).map_err(|_| FacadeError::bad("the form body is not UTF-8"))?;
    Params::parse_text(&query, Some(text))
}

/// A page of `items` as Nacos answers one: `totalCount`, `pageNumber`, `pagesAvailable`,
/// `pageItems`.
pub(crate) fn page<T: Serialize>(items: Vec<T>, page_no: usize, page_size: usize) -> serde_json::Value {
    let size = page_size.clamp(1, 500);
    let total = items.len();
    let number = page_no.max(1);
    let shown: Vec<T> = items
        .into_iter()
        .skip((number - 1).saturating_mul(size))
        .take(size)
        .collect();
    serde_json::json!({
        "totalCount": total,
        "pageNumber": number,
        "pagesAvailable": total.div_ceil(size),
        "pageItems": shown,
    })
}

/// `ms` since the epoch as an HTTP date (`Tue, 15 Nov 1994 08:12:31 GMT`).
pub(crate) fn http_date(ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms / 1000;
    let days = secs / 86_400;
    let (year, month, day) = civil(days);
    let of_day = secs % 86_400;
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// `ms` since the epoch as `yyyyMMddHHmmss`, UTC.
pub(crate) fn compact_date(ms: u64) -> String {
    let secs = ms / 1000;
    let (year, month, day) = civil(secs / 86_400);
    let of_day = secs % 86_400;
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// The civil date (year, month 1–12, day 1–31) of `days` since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_are_rfc_1123() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_887_151_000), "Tue, 15 Nov 1994 08:12:31 GMT");
        assert_eq!(http_date(1_709_251_199_999), "Thu, 29 Feb 2024 23:59:59 GMT");
        assert_eq!(http_date(1_796_601_600_000), "Mon, 07 Dec 2026 00:00:00 GMT");
        assert_eq!(compact_date(784_887_151_000), "19941115081231");
    }

    #[test]
    fn pages_count_from_one() {
        let shown = page((1..=5).collect::<Vec<u32>>(), 2, 2);
        assert_eq!(
            shown,
            serde_json::json!({"totalCount":5,"pageNumber":2,"pagesAvailable":3,"pageItems":[3,4]})
        );
        assert_eq!(page(Vec::<u32>::new(), 0, 0)["pagesAvailable"], 0);
        assert_eq!(
            page(vec![1u32], usize::MAX, usize::MAX)["pageItems"],
            serde_json::json!([])
        );
    }
}
