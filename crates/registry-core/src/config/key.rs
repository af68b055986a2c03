//! What names a config, and what a publish carries: [`ConfigKey`], [`ConfigFields`],
//! [`Cas`], with the store's own rules for them (docs/spec.md §8). A protocol adds its own
//! rules on top where it takes a write (Nacos's characters, say); these are the ones every
//! node checks again when it applies a log.

use std::fmt;
use std::sync::OnceLock;

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::error::{excerpt, Error};

/// The namespace a blank namespace stands for: the one the naming side calls `public`.
pub const DEFAULT_NAMESPACE: &str = "public";

/// The longest namespace, in bytes.
pub const MAX_NAMESPACE_LEN: usize = 128;
/// The longest group, in bytes.
pub const MAX_GROUP_LEN: usize = 128;
/// The longest data id (a key), in bytes.
pub const MAX_DATA_ID_LEN: usize = 512;
/// The longest of each descriptive field (type, description, app name, tags, the
/// encrypted data key, the publishing user), in bytes.
pub const MAX_FIELD_LEN: usize = 1024;

/// A config's identity: namespace, group and data id. Ordered that way, so that the
/// configs of one namespace and group are together and a prefix of data ids is a range.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConfigKey {
    /// The namespace ([`DEFAULT_NAMESPACE`] for a blank one).
    pub namespace: String,
    /// The group.
    pub group: String,
    /// The data id.
    pub data_id: String,
}

impl ConfigKey {
    /// The key of `data_id` in `group` of `namespace`; a blank namespace is
    /// [`DEFAULT_NAMESPACE`]. Not checked: see [`ConfigKey::validate`].
    pub fn new(namespace: &str, group: &str, data_id: &str) -> ConfigKey {
        let namespace = match namespace.trim() {
            "" => DEFAULT_NAMESPACE,
            _ => namespace,
        };
        ConfigKey {
            namespace: namespace.to_owned(),
            group: group.to_owned(),
            data_id: data_id.to_owned(),
        }
    }

    /// The store's rules: each part present, within its length, without control
    /// characters.
    pub fn validate(&self) -> Result<(), Error> {
        check_name("namespace", &self.namespace, MAX_NAMESPACE_LEN)?;
        check_name("group", &self.group, MAX_GROUP_LEN)?;
        check_name("dataId", &self.data_id, MAX_DATA_ID_LEN)
    }

    /// How many bytes the key takes, for budgets.
    pub(crate) fn len(&self) -> usize {
        self.namespace.len() + self.group.len() + self.data_id.len()
    }
}

fn check_name(field: &'static str, value: &str, max: usize) -> Result<(), Error> {
    let reason = if value.is_empty() {
        "must not be empty".to_owned()
    } else if value.len() > max {
        format!("must be at most {max} bytes, got {}", value.len())
    } else if value.chars().any(char::is_control) {
        format!("must not contain control characters, got {:?}", excerpt(value))
    } else {
        return Ok(());
    };
    Err(Error::InvalidConfig { field, reason })
}

/// What a publish sets: the content and the descriptive fields Nacos keeps beside it.
/// Blank fields are left out of the log's encoding.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigFields {
    /// The content, any UTF-8 text.
    pub content: String,
    /// The content's type (`text`, `json`, `yaml`, `properties`, …; blank: `text`).
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// A description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub desc: String,
    /// The application it belongs to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app_name: String,
    /// Tags, comma-separated.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tags: String,
    /// The key the content was encrypted with, encrypted (Nacos's `encryptedDataKey`);
    /// kept and handed back, never used here.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub encrypted_data_key: String,
    /// Who published it, as the client said.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub src_user: String,
    /// A number the writer keeps with the content and reads back (Consul KV's `Flags`);
    /// 0 unless set.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flags: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl ConfigFields {
    /// Just `content`, every other field blank.
    pub fn content(content: impl Into<String>) -> ConfigFields {
        ConfigFields {
            content: content.into(),
            ..ConfigFields::default()
        }
    }

    /// The store's rules: each descriptive field within [`MAX_FIELD_LEN`]. The content's
    /// size is the node's setting, checked where a write comes in.
    pub fn validate(&self) -> Result<(), Error> {
        for (field, value) in [
            ("type", &self.kind),
            ("desc", &self.desc),
            ("appName", &self.app_name),
            ("config_tags", &self.tags),
            ("encryptedDataKey", &self.encrypted_data_key),
            ("src_user", &self.src_user),
        ] {
            if value.len() > MAX_FIELD_LEN {
                return Err(Error::InvalidConfig {
                    field,
                    reason: format!("must be at most {MAX_FIELD_LEN} bytes, got {}", value.len()),
                });
            }
        }
        Ok(())
    }

    /// How many bytes the fields take, for budgets.
    pub(crate) fn len(&self) -> usize {
        self.content.len()
            + self.kind.len()
            + self.desc.len()
            + self.app_name.len()
            + self.tags.len()
            + self.encrypted_data_key.len()
            + self.src_user.len()
    }
}

/// A compare-and-set condition on a write: it applies only while the config is as the
/// writer last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cas {
    /// The config exists and its content has this md5 (Nacos's `casMd5`).
    Md5(String),
    /// The config's revision ([`crate::Config::revision`]) is this; 0: it does not exist
    /// (Consul's `?cas=`).
    Revision(u64),
}

/// The lowercase hex MD5 of `content`'s UTF-8 bytes: a config's md5 as every Nacos client
/// computes it.
pub fn md5_hex(content: &str) -> String {
    // Hex digits are ASCII.
    String::from_utf8_lossy(&md5_digits(content)).into_owned()
}

/// [`md5_hex`] without allocating.
fn md5_digits(content: &str) -> [u8; 32] {
    let digest = Md5::digest(content.as_bytes());
    let mut hex = [0u8; 32];
    for (at, byte) in digest.into_iter().enumerate() {
        hex[2 * at] = HEX[usize::from(byte >> 4)];
        hex[2 * at + 1] = HEX[usize::from(byte & 0xf)];
    }
    hex
}

/// A content's md5 ([`md5_hex`]), made the first time it is asked for: a node whose
/// clients never read a config (a follower nobody polls, a config nobody listens to)
/// never spends the hash, nor does a restart that loads a snapshot.
#[derive(Clone, Default)]
pub(crate) struct LazyMd5(OnceLock<[u8; 32]>);

impl LazyMd5 {
    /// The md5 of `content`, which must be the content it always is asked with.
    pub(crate) fn of(&self, content: &str) -> &str {
        let digits = self.0.get_or_init(|| md5_digits(content));
        // Hex digits are ASCII.
        std::str::from_utf8(digits).unwrap_or_default()
    }
}

/// Made from the content, which is compared beside it.
impl PartialEq for LazyMd5 {
    fn eq(&self, _: &LazyMd5) -> bool {
        true
    }
}

impl Eq for LazyMd5 {}

impl fmt::Debug for LazyMd5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.get() {
            Some(digits) => f.write_str(std::str::from_utf8(digits).unwrap_or_default()),
            None => f.write_str("(not made yet)"),
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_is_lowercase_hex_of_the_utf8_bytes() {
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex("hello"), "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(md5_hex("配置"), "224e2ccda861c2514faa683b3683c361");
    }

    #[test]
    fn keys_are_checked_and_a_blank_namespace_is_public() {
        assert_eq!(ConfigKey::new("", "g", "d").namespace, DEFAULT_NAMESPACE);
        assert_eq!(ConfigKey::new(" ", "g", "d").namespace, DEFAULT_NAMESPACE);
        assert!(ConfigKey::new("ns", "g", "d").validate().is_ok());
        assert!(ConfigKey::new("ns", "", "d").validate().is_err());
        assert!(ConfigKey::new("ns", "g", "").validate().is_err());
        assert!(ConfigKey::new("ns", "g", "a\nb").validate().is_err());
        assert!(ConfigKey::new("ns", &"g".repeat(129), "d").validate().is_err());
        assert!(ConfigKey::new(&"n".repeat(129), "g", "d").validate().is_err());
        assert!(ConfigKey::new("ns", "g", &"d".repeat(513)).validate().is_err());
        let mut fields = ConfigFields::content("x".repeat(10_000));
        assert!(fields.validate().is_ok(), "the content's size is the node's setting");
        fields.desc = "d".repeat(MAX_FIELD_LEN + 1);
        assert!(fields.validate().is_err());
    }
}
