use crate::error::{excerpt, Error};

/// The longest service name accepted, in bytes.
pub const MAX_SERVICE_NAME_LEN: usize = 256;

/// Checks a service name against the contract: non-empty, at most
/// [`MAX_SERVICE_NAME_LEN`] bytes, no whitespace, no control characters, no `,` (the batch
/// separator) and no `@` (the separator of timestamp keys).
pub fn validate_service_name(name: &str) -> Result<(), Error> {
    let reject = |reason| {
        Err(Error::InvalidServiceName {
            name: excerpt(name),
            reason,
        })
    };
    if name.is_empty() {
        return reject("must not be empty");
    }
    if name.len() > MAX_SERVICE_NAME_LEN {
        return reject("must be at most 256 bytes");
    }
    for c in name.chars() {
        if c.is_whitespace() {
            return reject("must not contain whitespace");
        }
        if c.is_control() {
            return reject("must not contain control characters");
        }
        if c == ',' {
            return reject("must not contain ','");
        }
        if c == '@' {
            return reject("must not contain '@'");
        }
    }
    Ok(())
}

/// Whether `c` is a bidirectional formatting character (Unicode's `Bidi_Control`: U+061C,
/// U+200E, U+200F, U+202A–U+202E, U+2066–U+2069): invisible, it makes a name display
/// other than it reads.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_seed_example() {
        assert!(validate_service_name("app1_public_dev_cn.kimmking.kkrpc.demo.api.UserService").is_ok());
    }

    #[test]
    fn rejects_each_rule() {
        for bad in ["", "a b", "a\tb", "a,b", "a@b", "a\u{7}b", "a\u{a0}b"] {
            assert!(validate_service_name(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(validate_service_name(&"x".repeat(256)).is_ok());
        assert!(validate_service_name(&"x".repeat(257)).is_err());
    }
}
