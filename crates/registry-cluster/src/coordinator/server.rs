use serde::{Deserialize, Serialize};

/// A server url that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid server url {url:?}: {reason}")]
pub struct UrlError {
    /// The url as given.
    pub url: String,
    /// Why it was refused.
    pub reason: &'static str,
}

/// One registry node as the cluster sees it; the JSON of `/info` and `/cluster`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// The node's base url, normalised.
    pub url: String,
    /// Whether the last probe reached it.
    pub status: bool,
    /// Whether it is the leader.
    pub leader: bool,
    /// Its registry version.
    pub version: u64,
    /// Raft mode: the node's id (derived from its url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<u64>,
    /// Raft mode: the term the node is in, as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// Raft mode: the index of the last log entry the node applied, as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<u64>,
    /// The Nacos gRPC connections the node holds, as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_connections: Option<u64>,
}

/// Brings a server url to one canonical form, `http://host:port` or `https://host:port`:
/// scheme and host lower-cased, `localhost` written `127.0.0.1`, the port made explicit
/// (80 or 443 when absent), trailing slashes dropped. Only base urls are accepted.
pub fn normalize_url(url: &str) -> Result<String, UrlError> {
    let bad = |reason| UrlError {
        url: url.to_owned(),
        reason,
    };
    let trimmed = url.trim().trim_end_matches('/');
    let Some(scheme_end) = trimmed.find("://") else {
        return Err(bad("expected http://host:port"));
    };
    let scheme = trimmed[..scheme_end].to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad("only http:// and https:// are supported"));
    }
    let authority = &trimmed[scheme_end + 3..];
    if authority.is_empty() {
        return Err(bad("the host is missing"));
    }
    if authority.contains(['/', '?', '#', '@']) || authority.chars().any(char::is_whitespace) {
        return Err(bad("expected a bare http://host:port, without path, query or user"));
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        // [v6-address]:port
        let Some((v6, after)) = rest.split_once(']') else {
            return Err(bad("unclosed '[' in the host"));
        };
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad("expected ':' after ']'"))?),
        };
        (format!("[{}]", v6.to_ascii_lowercase()), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_ascii_lowercase(), Some(p)),
            None => (authority.to_ascii_lowercase(), None),
        }
    };
    if host.is_empty() || host.contains(':') && !host.starts_with('[') {
        return Err(bad("the host is missing or malformed"));
    }
    let port: u16 = match port {
        None if scheme == "https" => 443,
        None => 80,
        Some(p) => p
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
    };
    let host = if host == "localhost" {
        "127.0.0.1".to_owned()
    } else {
        host
    };
    Ok(format!("{scheme}://{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_server_many_spellings() {
        for spelling in [
            "http://127.0.0.1:8081",
            "http://127.0.0.1:8081/",
            "HTTP://LOCALHOST:8081//",
            "  http://localhost:8081 ",
        ] {
            assert_eq!(normalize_url(spelling).unwrap(), "http://127.0.0.1:8081", "{spelling}");
        }
        assert_eq!(
            normalize_url("http://registry.example").unwrap(),
            "http://registry.example:80"
        );
        assert_eq!(normalize_url("http://[::1]:9000").unwrap(), "http://[::1]:9000");
        assert_eq!(
            normalize_url("HTTPS://Node-1.example").unwrap(),
            "https://node-1.example:443"
        );
        assert_eq!(
            normalize_url("https://127.0.0.1:8443/").unwrap(),
            "https://127.0.0.1:8443"
        );
    }

    #[test]
    fn refuses_what_is_not_a_base_url() {
        for bad in [
            "",
            "127.0.0.1:8081",
            "ftp://h:1",
            "https://",
            "http://",
            "http://h:0",
            "http://h:99999",
            "http://h:x",
            "http://h:1/path",
            "http://u@h:1",
            "http://h:1?q",
            "http://a b:1",
            "http://[::1",
        ] {
            assert!(normalize_url(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
