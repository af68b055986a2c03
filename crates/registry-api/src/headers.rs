//! The names and values every part of the API shares on the wire: our own headers and the
//! content types the facades answer in.

use http::{HeaderName, Request};

/// The version an answer of `/findAll`, `/version`, `/versions` (and the overviews)
/// reflects: what to pass as `since` next.
pub const VERSION_HEADER: HeaderName = HeaderName::from_static("x-maregistry-version");

/// Marks a request relayed by a follower; its value is the follower's url. A node that
/// does not lead refuses a marked write instead of relaying it again.
pub const FORWARDED_HEADER: &str = "x-maregistry-forwarded";

/// How Nacos and Eureka type their plain answers and errors.
pub(crate) const TEXT: &str = "text/plain;charset=UTF-8";

/// Whether a follower relayed this request.
pub(crate) fn is_forwarded<B>(request: &Request<B>) -> bool {
    request.headers().contains_key(FORWARDED_HEADER)
}
