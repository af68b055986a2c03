//! Per-instance leases: an instance may declare how long it may go without a heartbeat
//! (Eureka clients declare 90 s and renew every 30 s), in a reserved parameter. The
//! registry bounds what it accepts; without a declaration the global TTL applies.

use std::time::Duration;

/// The reserved parameter holding an instance's lease: a duration (`90s`, `1500ms`, `2m`)
/// or a whole number of seconds (`90`). The seed API sees it as any other parameter.
pub const LEASE_PARAMETER: &str = "maregistry.lease";

/// The reserved parameter holding the checks the registry runs for an instance (the Consul
/// facade's: TTL, HTTP and TCP, with their state, as JSON). The registry counts, per
/// service, the instances carrying it ([`crate::Registry::services_with_checks`]).
pub const CHECKS_PARAMETER: &str = "maregistry.checks";

/// The lease that never runs out ([`LEASE_PARAMETER`] `never`): the instance stays until it
/// is unregistered (what a Consul agent does with the services it holds; the Consul facade's
/// checks decide their health).
pub const LEASE_NEVER: &str = "never";

/// [`LEASE_NEVER`] in ms, as leases are kept.
pub(crate) const NEVER_MS: u64 = u64::MAX;

/// The shortest and longest lease the registry grants; a declared lease outside is cut
/// to the nearest bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseBounds {
    /// The shortest lease granted.
    pub min: Duration,
    /// The longest lease granted.
    pub max: Duration,
}

impl Default for LeaseBounds {
    fn default() -> Self {
        LeaseBounds {
            min: Duration::from_secs(5),
            max: Duration::from_secs(300),
        }
    }
}

impl LeaseBounds {
    /// The lease in ms an instance that declared `declared_ms` (0: nothing) is granted,
    /// with `default_ms` (the global TTL) for one that declared nothing.
    pub fn granted(&self, declared_ms: u64, default_ms: u64) -> u64 {
        match declared_ms {
            0 => return default_ms,
            NEVER_MS => return NEVER_MS,
            _ => {}
        }
        declared_ms.clamp(millis(self.min), millis(self.max).max(millis(self.min)))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `500ms`, `5s`, `1m`, `1h`: a whole number and a unit, the form of every duration a
/// flag or a query parameter takes. A bare number is refused, so that `--ttl 20` cannot
/// silently mean 20 ms or 20 hours.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration: expected a whole number and a unit, e.g. 500ms, 5s, 1m"))?;
    let millis = match unit.trim() {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "" => return Err(format!("{text:?} has no unit: write {n}ms, {n}s, {n}m or {n}h")),
        other => return Err(format!("unknown unit {other:?} in {text:?}: use ms, s, m or h")),
    };
    millis
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long a duration"))
}

/// A duration ([`parse_duration`]), or a bare whole number of seconds.
pub fn parse_duration_or_seconds(text: &str) -> Option<Duration> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse()
            .ok()
            .and_then(|s: u64| s.checked_mul(1000))
            .map(Duration::from_millis);
    }
    parse_duration(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_leases_are_bounded_and_absent_ones_take_the_ttl() {
        let bounds = LeaseBounds::default();
        assert_eq!(bounds.granted(0, 20_000), 20_000);
        assert_eq!(bounds.granted(90_000, 20_000), 90_000);
        assert_eq!(bounds.granted(1, 20_000), 5_000);
        assert_eq!(bounds.granted(3_600_000, 20_000), 300_000);
        assert_eq!(parse_duration_or_seconds("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration_or_seconds("1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration_or_seconds("x"), None);
        assert_eq!(parse_duration_or_seconds(""), None);
    }
}
