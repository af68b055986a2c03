//! What a check may probe: only the address its registration named (docs/spec.md §10.4).

/// The host of an `http://` check url.
pub(crate) fn http_host(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("HTTP check {url:?}: only http:// urls are probed"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!("HTTP check {url:?}: credentials in the url are not taken"));
    }
    Ok(host_of(authority).to_owned())
}

/// The host of a `host:port` check target.
pub(crate) fn tcp_host(target: &str) -> Result<&str, String> {
    match target.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok_and(|p| p != 0) => Ok(host_of(target)),
        _ => Err(format!("TCP check {target:?}: expected host:port")),
    }
}

/// The host of `host[:port]`, IPv6 brackets removed.
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    authority.split(':').next().unwrap_or_default()
}

/// A check probes only the address its registration named: the registry never becomes a
/// way to reach other hosts.
pub(crate) fn same_target(host: impl AsRef<str>, address: &str) -> Result<(), String> {
    let host = host.as_ref();
    if host.eq_ignore_ascii_case(address) {
        return Ok(());
    }
    Err(format!(
        "the check's target host {host:?} must be the service's address {address:?} (maregistry probes only that)"
    ))
}
