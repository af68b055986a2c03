//! Passwords (docs/spec.md §9.1): hashed with bcrypt (Nacos's format, so that its hashes
//! can be brought along), checked against the hash the log holds. A check costs tens of
//! milliseconds on purpose; a password checked once against a hash is remembered (as a
//! digest, never the password), so that clients that send a username and password on
//! every request pay it once. Failed logins of a name are slowed down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ring::digest;

/// bcrypt's cost: 2^10 rounds, Nacos's.
const COST: u32 = 10;

/// How many passwords checked are remembered before the memory is cleared.
const REMEMBERED: usize = 10_000;

/// After how many failures in a row a name's logins are slowed.
const FREE_FAILURES: u32 = 3;

/// The longest a failed login is held back.
const MAX_DELAY: Duration = Duration::from_secs(8);

/// After how long without a failure a name's count is forgotten, ms.
const FORGET_MS: u64 = 15 * 60 * 1000;

/// The longest password hashed: bcrypt reads 72 bytes.
pub const MAX_PASSWORD_LEN: usize = 72;

/// A hash of `password` to store.
pub fn hash(password: &str) -> Result<String, String> {
    bcrypt::hash(password, COST).map_err(|e| format!("the password could not be hashed: {e}"))
}

/// The passwords checked and the failures counted on this node.
#[derive(Debug, Default)]
pub(crate) struct Passwords {
    /// Per user: the digest of a password found to match, and the hash it matched.
    checked: Mutex<HashMap<String, ([u8; 32], String)>>,
    /// Per user: failures in a row, and when the last one was.
    failures: Mutex<HashMap<String, (u32, u64)>>,
}

impl Passwords {
    /// Whether `password` is the one `stored` is a hash of.
    pub(crate) fn matches(&self, user: &str, password: &str, stored: &str) -> bool {
        let presented: [u8; 32] = digest::digest(&digest::SHA256, password.as_bytes())
            .as_ref()
            .try_into()
            .unwrap_or([0; 32]);
        {
            let checked = self.checked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((digest, hash)) = checked.get(user) {
                if hash == stored && digest.iter().zip(presented).fold(0, |d, (a, b)| d | (a ^ b)) == 0 {
                    return true;
                }
            }
        }
        if password.len() > MAX_PASSWORD_LEN || !bcrypt::verify(password, stored).unwrap_or(false) {
            return false;
        }
        let mut checked = self.checked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if checked.len() >= REMEMBERED {
            checked.clear();
        }
        checked.insert(user.to_owned(), (presented, stored.to_owned()));
        true
    }

    /// How long to hold back a login of `user` at `now_ms` after its recent failures.
    pub(crate) fn delay(&self, user: &str, now_ms: u64) -> Duration {
        let failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match failures.get(user) {
            Some(&(count, last)) if count >= FREE_FAILURES && now_ms.saturating_sub(last) < FORGET_MS => {
                let doubled = 250u64.saturating_mul(1 << (count - FREE_FAILURES).min(10));
                Duration::from_millis(doubled).min(MAX_DELAY)
            }
            _ => Duration::ZERO,
        }
    }

    /// Whether a check of `user`'s password at `now_ms` is refused unchecked: it failed
    /// three times or more in a row, the last time less than its delay ago (a request that
    /// carries a password is held to the same pace as a login, without the wait).
    pub(crate) fn held_back(&self, user: &str, now_ms: u64) -> bool {
        let delay = self.delay(user, now_ms);
        let failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        !delay.is_zero()
            && failures
                .get(user)
                .is_some_and(|&(_, last)| now_ms.saturating_sub(last) < delay.as_millis() as u64)
    }

    /// Counts a login of `user` at `now_ms`: a failure adds one, a success forgets.
    pub(crate) fn count(&self, user: &str, ok: bool, now_ms: u64) {
        let mut failures = self.failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if ok {
            failures.remove(user);
            return;
        }
        if failures.len() >= REMEMBERED {
            failures.retain(|_, (_, last)| now_ms.saturating_sub(*last) < FORGET_MS);
        }
        let entry = failures.entry(user.to_owned()).or_insert((0, now_ms));
        if now_ms.saturating_sub(entry.1) >= FORGET_MS {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_its_hash_only() {
        let stored = hash("s3cret").unwrap();
        assert!(stored.starts_with("$2"), "bcrypt, as Nacos stores it");
        let passwords = Passwords::default();
        assert!(passwords.matches("u", "s3cret", &stored));
        assert!(passwords.matches("u", "s3cret", &stored), "remembered");
        assert!(!passwords.matches("u", "s3cret!", &stored));
        let other = hash("other").unwrap();
        assert!(
            !passwords.matches("u", "s3cret", &other),
            "a changed hash is checked again"
        );
        assert!(!passwords.matches("u", "x", "not a hash"));
    }

    #[test]
    fn failures_in_a_row_are_held_back_more_and_more() {
        let passwords = Passwords::default();
        for _ in 0..FREE_FAILURES {
            assert_eq!(passwords.delay("u", 0), Duration::ZERO);
            passwords.count("u", false, 0);
        }
        let first = passwords.delay("u", 0);
        passwords.count("u", false, 0);
        assert!(passwords.delay("u", 0) > first && first > Duration::ZERO);
        for _ in 0..20 {
            passwords.count("u", false, 0);
        }
        assert_eq!(passwords.delay("u", 0), MAX_DELAY);
        assert_eq!(
            passwords.delay("u", FORGET_MS),
            Duration::ZERO,
            "forgotten after a while"
        );
        assert_eq!(passwords.delay("other", 0), Duration::ZERO, "per name");
        passwords.count("u", true, 0);
        assert_eq!(passwords.delay("u", 0), Duration::ZERO, "a success forgets");
    }
}
