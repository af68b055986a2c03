/// Everything that can go wrong in the registry core. Every variant is a rejected input:
/// when one is returned, nothing has changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A service name broke the naming rules.
    #[error("invalid service name {name:?}: {reason}")]
    InvalidServiceName {
        /// The offending name, shortened for display.
        name: String,
        /// What rule it broke.
        reason: &'static str,
    },
    /// An instance field broke its rule.
    #[error("invalid instance: '{field}' {reason}")]
    InvalidInstance {
        /// The field name as it appears in JSON (`body` for the document as a whole).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A config's key or field broke its rule.
    #[error("invalid config: '{field}' {reason}")]
    InvalidConfig {
        /// The field, as Nacos names it.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A user, role or permission broke its rule.
    #[error("invalid {field}: {reason}")]
    InvalidIdentity {
        /// The field, as Nacos names it.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A snapshot did not parse or failed validation.
    #[error("invalid snapshot: {0}")]
    InvalidSnapshot(String),
}

/// Shortens user input for inclusion in an error message.
pub(crate) fn excerpt(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
