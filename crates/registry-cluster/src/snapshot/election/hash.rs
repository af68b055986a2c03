use super::Election;
use crate::coordinator::Server;

/// The seed's rule: keep the one reachable leader if there is exactly one; otherwise the
/// reachable server whose url has the smallest Java `String.hashCode()` leads (ties, which
/// need two urls with one hash, go to the smaller url).
#[derive(Debug, Clone, Copy, Default)]
pub struct HashElection;

impl Election for HashElection {
    fn name(&self) -> &'static str {
        "hash"
    }

    fn elect(&self, servers: &[Server]) -> Option<usize> {
        let reachable = || servers.iter().enumerate().filter(|(_, s)| s.status);
        let mut leaders = reachable().filter(|(_, s)| s.leader);
        if let (Some((index, _)), None) = (leaders.next(), leaders.next()) {
            return Some(index);
        }
        reachable()
            .min_by(|(_, a), (_, b)| {
                java_hash_code(&a.url)
                    .cmp(&java_hash_code(&b.url))
                    .then_with(|| a.url.cmp(&b.url))
            })
            .map(|(index, _)| index)
    }
}

/// Java's `String.hashCode()`: `s[0]*31^(n-1) + … + s[n-1]` over UTF-16 code units,
/// wrapping at 32 bits, so a Java node of the seed's design elects the same leader.
pub fn java_hash_code(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, unit| h.wrapping_mul(31).wrapping_add(i32::from(unit)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::election::view;

    #[test]
    fn hash_code_matches_java() {
        // Values printed by java.lang.String#hashCode (OpenJDK 17).
        assert_eq!(java_hash_code(""), 0);
        assert_eq!(java_hash_code("a"), 97);
        assert_eq!(java_hash_code("hello"), 99_162_322);
        assert_eq!(java_hash_code("http://localhost:8081"), 1_860_026_890);
        assert_eq!(java_hash_code("http://localhost:8082"), 1_860_026_891);
        assert_eq!(java_hash_code("http://127.0.0.1:8484"), 1_911_252_327);
        // Wraps into negative numbers like Java does.
        assert_eq!(java_hash_code("http://registry-2.prod:8484"), -46_701_055);
        assert_eq!(java_hash_code("http://192.168.1.100:8080"), -830_678_009);
        // UTF-16 code units, as Java counts them (a surrogate pair is two).
        assert_eq!(java_hash_code("é"), 233);
        assert_eq!(java_hash_code("😀"), 1_772_899);
    }

    #[test]
    fn smallest_hash_wins_when_nobody_leads() {
        let servers = view(&[
            ("http://localhost:8082", true, false),
            ("http://localhost:8081", true, false),
        ]);
        assert_eq!(HashElection.elect(&servers), Some(1));
    }

    #[test]
    fn unreachable_servers_cannot_win() {
        let servers = view(&[
            ("http://localhost:8081", false, false),
            ("http://localhost:8082", true, false),
        ]);
        assert_eq!(HashElection.elect(&servers), Some(1));
        let nobody = view(&[("http://localhost:8081", false, true)]);
        assert_eq!(HashElection.elect(&nobody), None);
    }

    #[test]
    fn one_visible_leader_is_kept_even_if_a_better_node_returns() {
        let servers = view(&[
            ("http://localhost:8081", true, false),
            ("http://localhost:8082", true, true),
        ]);
        assert_eq!(HashElection.elect(&servers), Some(1));
    }

    #[test]
    fn two_leaders_are_resolved_by_the_hash_rule() {
        let servers = view(&[
            ("http://localhost:8082", true, true),
            ("http://localhost:8081", true, true),
            ("http://localhost:8083", true, false),
        ]);
        assert_eq!(HashElection.elect(&servers), Some(1));
    }

    #[test]
    fn a_leader_that_is_unreachable_does_not_count() {
        let servers = view(&[
            ("http://localhost:8081", false, true),
            ("http://localhost:8083", true, false),
            ("http://localhost:8082", true, false),
        ]);
        assert_eq!(HashElection.elect(&servers), Some(2));
    }
}
