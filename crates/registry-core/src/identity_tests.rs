use super::*;
use crate::command::Command;
use crate::registry::Registry;

fn change(registry: &Registry, change: IdentityChange) {
    let applied = registry.apply(&Command::Identity { change }, 1);
    assert!(!applied.rejected);
}

fn user(name: &str) -> IdentityChange {
    IdentityChange::CreateUser {
        username: name.to_owned(),
        password_hash: format!("hash-of-{name}"),
    }
}

fn grant(role: &str, resource: &str, action: Action) -> IdentityChange {
    IdentityChange::Grant {
        role: role.to_owned(),
        resource: resource.to_owned(),
        action,
    }
}

fn bind(role: &str, username: &str) -> IdentityChange {
    IdentityChange::BindRole {
        role: role.to_owned(),
        username: username.to_owned(),
    }
}

#[test]
fn glob_matches_runs_of_anything() {
    for (pattern, text, expected) in [
        ("*", "", true),
        ("*", "abc", true),
        ("a*", "abc", true),
        ("a*c", "abbbc", true),
        ("a*c", "abcd", false),
        ("*b*", "abc", true),
        ("abc", "abc", true),
        ("abc", "abd", false),
        ("", "", true),
        ("", "a", false),
        ("dev*", "prod", false),
    ] {
        assert_eq!(glob(pattern, text), expected, "{pattern:?} ~ {text:?}");
    }
}

#[test]
fn a_service_name_is_namespace_group_and_name() {
    assert_eq!(
        Resource::service("orders"),
        Resource {
            namespace: "public",
            group: "DEFAULT_GROUP",
            kind: Kind::Naming,
            name: "orders"
        }
    );
    assert_eq!(
        Resource::service("G::orders"),
        Resource {
            namespace: "public",
            group: "G",
            kind: Kind::Naming,
            name: "orders"
        }
    );
    assert_eq!(
        Resource::service("dev/G::orders"),
        Resource {
            namespace: "dev",
            group: "G",
            kind: Kind::Naming,
            name: "orders"
        }
    );
}

#[test]
fn permissions_decide_by_role_resource_and_action() {
    let r = Registry::new();
    for c in [
        user("reader"),
        user("admin"),
        user("nobody"),
        bind("readers", "reader"),
        bind(ADMIN_ROLE, "admin"),
        grant("readers", "dev:*:*", Action::Read),
        grant("readers", ":G:config/app.yaml", Action::ReadWrite),
    ] {
        change(&r, c);
    }
    let state = r.identities().read();
    let dev = Resource::service("dev/G::orders");
    let public = Resource::service("orders");
    assert!(state.allows("reader", &dev, Need::Read));
    assert!(!state.allows("reader", &dev, Need::Write));
    assert!(!state.allows("reader", &public, Need::Read));
    let config = Resource {
        namespace: "public",
        group: "G",
        kind: Kind::Config,
        name: "app.yaml",
    };
    assert!(
        state.allows("reader", &config, Need::Write),
        "the empty namespace id is public"
    );
    assert!(
        !state.allows(
            "reader",
            &Resource {
                kind: Kind::Naming,
                ..config
            },
            Need::Write
        ),
        "the kind counts"
    );
    assert!(!state.allows("reader", &Resource::ALL, Need::Read));
    assert!(state.allows("admin", &Resource::ALL, Need::Write));
    assert!(!state.allows("nobody", &dev, Need::Read));
    assert!(!state.allows("ghost", &dev, Need::Read));
}

#[test]
fn removals_take_effect_and_bindings_go_with_their_user() {
    let r = Registry::new();
    for c in [user("u"), bind("team", "u"), grant("team", "dev:*:*", Action::Write)] {
        change(&r, c);
    }
    let dev = Resource::service("dev/svc");
    assert!(r.identities().read().allows("u", &dev, Need::Write));
    change(
        &r,
        IdentityChange::Revoke {
            role: "team".into(),
            resource: "dev:*:*".into(),
            action: Action::Write,
        },
    );
    assert!(!r.identities().read().allows("u", &dev, Need::Write));
    change(&r, grant("team", "dev:*:*", Action::Write));
    change(&r, IdentityChange::RemoveUser { username: "u".into() });
    assert_eq!(r.identities().read().bindings().count(), 0);
    change(&r, user("u"));
    assert!(
        !r.identities().read().allows("u", &dev, Need::Write),
        "a new user of the same name starts bare"
    );
    change(&r, bind("team", "u"));
    change(
        &r,
        IdentityChange::UnbindRole {
            role: "team".into(),
            username: None,
        },
    );
    assert!(
        r.identities().read().permissions().count() == 0,
        "a role no one holds loses its grants"
    );
}

#[test]
fn changes_that_do_not_apply_change_nothing() {
    let r = Registry::new();
    change(&r, user("u"));
    let before = r.identities().snapshot();
    change(
        &r,
        IdentityChange::CreateUser {
            username: "u".into(),
            password_hash: "other".into(),
        },
    );
    change(&r, bind("team", "ghost"));
    change(
        &r,
        IdentityChange::SetPassword {
            username: "ghost".into(),
            password_hash: "h".into(),
        },
    );
    assert_eq!(r.identities().snapshot(), before);
}

#[test]
fn bad_names_are_refused_and_applied_as_nothing() {
    for bad in [
        IdentityChange::CreateUser {
            username: String::new(),
            password_hash: "h".into(),
        },
        IdentityChange::CreateUser {
            username: "a\nb".into(),
            password_hash: "h".into(),
        },
        IdentityChange::CreateUser {
            username: "x".repeat(MAX_IDENTITY_LEN + 1),
            password_hash: "h".into(),
        },
        grant("r", "dev", Action::Read),
        grant("r", "dev::*", Action::Read),
        grant("", "dev:*:*", Action::Read),
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
        let r = Registry::new();
        assert!(r.apply(&Command::Identity { change: bad }, 1).rejected);
        assert_eq!(r.identities().read().revision, 0);
    }
}

#[test]
fn identities_survive_the_binary_form_and_earlier_formats_read_empty() {
    let r = Registry::new();
    for c in [
        user("u"),
        bind("team", "u"),
        grant("team", "dev:*:*", Action::ReadWrite),
    ] {
        change(&r, c);
    }
    let mut bytes = Vec::new();
    r.frozen().write_binary(&mut bytes).unwrap();
    let restored = Registry::new();
    restored.install(Registry::decode_binary(bytes.as_slice()).unwrap());
    assert_eq!(restored.identities().snapshot(), r.identities().snapshot());
    let mut old = Vec::new();
    r.frozen().write_layout(3, &mut old).unwrap();
    let from_old = Registry::decode_binary(old.as_slice()).unwrap();
    let fresh = Registry::new();
    fresh.install(from_old);
    assert_eq!(fresh.identities().snapshot(), IdentityState::default());
}
