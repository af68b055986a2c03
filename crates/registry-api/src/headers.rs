//! The names and values every part of the API shares on the wire: our own headers and the
//! content types the facades answer in.

use http::{HeaderName, Request};

/// The version an answer of `/findAll`, `/version`, `/versions` (and the overviews)
/// reflects: what to pass as `since` next.
pub const VERSION_HEADER: HeaderName = HeaderName::from_static("x-maregistry-version");

/// Marks a request relayed by a follower; its value is the follower's url. A node that
/// does not lead refuses a marked write instead of relaying it again.
pub const FORWARDED_HEADER: &str = "x-maregistry-forwarded";

/// [`FORWARDED_HEADER`], made once: a lookup by a string parses the name on every request.
const FORWARDED: HeaderName = HeaderName::from_static(FORWARDED_HEADER);

/// How the protocol facades type their plain answers and errors.
pub const TEXT: &str = "text/plain;charset=UTF-8";

/// Whether a follower relayed this request.
pub(crate) fn is_forwarded<B>(request: &Request<B>) -> bool {
    request.headers().contains_key(FORWARDED)
}

/// The header a browser sends to say where a request comes from (a name made once: a
/// lookup by a string parses the name on every request).
const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// The `Host` a proxy in front of the node was asked for.
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Whether `name` is one of the headers [`cross_site`] reads, which only browsers send.
pub(crate) fn is_browser_header(name: &HeaderName) -> bool {
    name == http::header::ORIGIN || name == SEC_FETCH_SITE
}

/// Why a write looks sent by another site's page, which any web page can make a browser
/// send without asking (a form, or `fetch` with a `text/plain` body): `Sec-Fetch-Site:
/// cross-site`, or an `Origin` whose host and port are not the node's (`Host`, or
/// `X-Forwarded-Host` behind a proxy). `None` for a request that carries neither, as every
/// client but a browser sends (docs/spec.md §3.4).
pub(crate) fn cross_site<B>(request: &Request<B>) -> Option<String> {
    let headers = request.headers();
    if headers
        .get(SEC_FETCH_SITE)
        .is_some_and(|site| site.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return Some("the browser says it comes from another site (Sec-Fetch-Site: cross-site)".to_owned());
    }
    let origin = headers.get(http::header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or("");
    let ours = |header: &HeaderName| {
        headers
            .get(header)
            .and_then(|host| host.to_str().ok())
            .is_some_and(|host| same_authority(origin, host))
    };
    if ours(&http::header::HOST) || ours(&X_FORWARDED_HOST) {
        return None;
    }
    Some(format!(
        "it comes from a page of another origin ({origin:?}); a node takes writes from its own console and from clients that send no Origin"
    ))
}

/// Whether the origin `scheme://host[:port]` names `host` (a `Host` header's
/// `host[:port]`), default ports aside.
fn same_authority(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return false,
    };
    let bare = |a: &str| a.strip_suffix(default).unwrap_or(a).to_ascii_lowercase();
    bare(authority) == bare(host.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request<()> {
        let mut request = Request::post("/reg");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap()
    }

    #[test]
    fn a_write_from_another_sites_page_is_told_apart_from_clients_and_the_console() {
        assert_eq!(cross_site(&request(&[("host", "10.0.0.1:8484")])), None, "a client");
        let console = [("host", "10.0.0.1:8484"), ("origin", "http://10.0.0.1:8484")];
        assert_eq!(cross_site(&request(&console)), None, "the node's own console");
        let default_port = [("host", "reg.example"), ("origin", "https://REG.example:443")];
        assert_eq!(cross_site(&request(&default_port)), None);
        let proxied = [
            ("host", "10.0.0.1:8484"),
            ("x-forwarded-host", "reg.example"),
            ("origin", "https://reg.example"),
        ];
        assert_eq!(cross_site(&request(&proxied)), None, "behind a proxy");
        for foreign in [
            vec![("host", "10.0.0.1:8484"), ("origin", "http://evil.example")],
            vec![("host", "10.0.0.1:8484"), ("origin", "http://10.0.0.1:8485")],
            vec![("host", "10.0.0.1:8484"), ("origin", "null")],
            vec![("origin", "http://10.0.0.1:8484")],
            vec![("host", "10.0.0.1:8484"), ("sec-fetch-site", "cross-site")],
        ] {
            assert!(cross_site(&request(&foreign)).is_some(), "{foreign:?}");
        }
    }
}
