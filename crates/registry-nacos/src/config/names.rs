//! A config as a Nacos request names it: `dataId`, `group` and `tenant` (the namespace),
//! checked as Nacos checks them (`ParamUtils`: letters, digits and `_-.:`; at most 256
//! bytes for a data id, 128 for a group or a tenant), into the store's [`ConfigKey`].

use registry_core::ConfigKey;

use crate::v1::DEFAULT_GROUP;

/// The longest data id Nacos accepts, in bytes.
pub(crate) const MAX_DATA_ID_LEN: usize = 256;
/// The longest group, in bytes.
pub(crate) const MAX_GROUP_LEN: usize = 128;
/// The longest tenant (namespace), in bytes.
pub(crate) const MAX_TENANT_LEN: usize = 128;

/// A config named by a request: its key, and the tenant as the client sent it (`""` for
/// none), which answers and pushes echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Named {
    pub(crate) key: ConfigKey,
    pub(crate) tenant: String,
}

/// Whether `text` is made of what Nacos allows in a name: letters and digits (of any
/// script, as Java's `isLetterOrDigit`), `_`, `-`, `.` and `:`.
pub(crate) fn is_valid(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// The config `data_id` in `group` (blank: `DEFAULT_GROUP`) of `tenant` (blank: the
/// public namespace), each checked.
pub(crate) fn named(data_id: Option<&str>, group: Option<&str>, tenant: Option<&str>) -> Result<Named, String> {
    let data_id = data_id.map(str::trim).unwrap_or("");
    if data_id.is_empty() {
        return Err("dataId is required".to_owned());
    }
    check("dataId", data_id, MAX_DATA_ID_LEN)?;
    let group = match group.map(str::trim) {
        None | Some("") => DEFAULT_GROUP,
        Some(group) => group,
    };
    check("group", group, MAX_GROUP_LEN)?;
    let tenant = tenant.map(str::trim).unwrap_or("");
    if !tenant.is_empty() {
        check("tenant", tenant, MAX_TENANT_LEN)?;
    }
    Ok(Named {
        key: ConfigKey::new(tenant, group, data_id),
        tenant: tenant.to_owned(),
    })
}

fn check(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("too long {field}, over {max} bytes"));
    }
    if !is_valid(value) {
        return Err(format!("invalid {field}: {value:?} (letters, digits and _ - . : only)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_as_nacos_checks_them() {
        let named = named(Some("app.yaml"), None, None).expect("valid");
        assert_eq!(named.key, ConfigKey::new("public", "DEFAULT_GROUP", "app.yaml"));
        assert_eq!(named.tenant, "");
        let named = super::named(Some("配置-1:x_y"), Some("G"), Some("ns-1")).expect("unicode letters are letters");
        assert_eq!(named.key.namespace, "ns-1");
        assert_eq!(named.tenant, "ns-1");
        for (data_id, group, tenant) in [
            (None, None, None),
            (Some(""), None, None),
            (Some("a b"), None, None),
            (Some("a/b"), None, None),
            (Some("ok"), Some("g!"), None),
            (Some("ok"), None, Some("n s")),
        ] {
            assert!(
                super::named(data_id, group, tenant).is_err(),
                "{data_id:?} {group:?} {tenant:?}"
            );
        }
        assert!(super::named(Some(&"d".repeat(257)), None, None).is_err());
        assert!(super::named(Some("d"), Some(&"g".repeat(129)), None).is_err());
        assert!(super::named(Some("d"), None, Some(&"t".repeat(129))).is_err());
    }
}
