//! Who may do what (docs/spec.md §9): users (a name and a password hash, never the
//! password), the roles bound to them, and the permissions of a role on a resource, all
//! written by the one log ([`IdentityChange`] inside a `Command::Identity`) so that every
//! node decides alike. Hashing passwords and checking them is the caller's: this store
//! only keeps what it is given and answers [`Identities::allows`].
//!
//! A resource is Nacos's `namespace:group:name`; `*` in a permission's resource matches
//! any run of characters. The name part of a permission may name the kind as Nacos does
//! (`naming/orders`, `config/app.yaml`) or not (`orders` matches a service or a config
//! of that name). The default namespace is `public`; a permission written for Nacos's
//! empty namespace id (`:*:*`) means it too.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{RwLock, RwLockReadGuard};

use serde::{Deserialize, Serialize};

use crate::config::DEFAULT_NAMESPACE;
use crate::error::{excerpt, Error};

/// The role that may do everything (Nacos's `GLOBAL_ADMIN_ROLE`).
pub const ADMIN_ROLE: &str = "ROLE_ADMIN";

/// The longest user name, role or resource, in bytes.
pub const MAX_IDENTITY_LEN: usize = 256;

/// What a permission lets its role do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Read (Nacos `r`).
    #[serde(rename = "r")]
    Read,
    /// Write (Nacos `w`).
    #[serde(rename = "w")]
    Write,
    /// Both (Nacos `rw`).
    #[serde(rename = "rw")]
    ReadWrite,
}

impl Action {
    /// From Nacos's `r`, `w` or `rw`.
    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "r" => Some(Action::Read),
            "w" => Some(Action::Write),
            "rw" => Some(Action::ReadWrite),
            _ => None,
        }
    }

    /// As Nacos writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "r",
            Action::Write => "w",
            Action::ReadWrite => "rw",
        }
    }

    /// Whether it lets its holder do `need`.
    pub fn covers(self, need: Need) -> bool {
        matches!(
            (self, need),
            (Action::ReadWrite, _) | (Action::Read, Need::Read) | (Action::Write, Need::Write)
        )
    }
}

/// What a request needs to do to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Need {
    /// Read it.
    Read,
    /// Change it.
    Write,
}

/// The kind of a resource's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A service.
    Naming,
    /// A config.
    Config,
}

/// What a request touches: a namespace, a group and a name in it. `"*"` in every part
/// stands for everything (a listing across namespaces), which only a permission on
/// everything (`*:*:*`) or the admin role covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource<'a> {
    /// The namespace (`public` for the default one).
    pub namespace: &'a str,
    /// The group.
    pub group: &'a str,
    /// What kind the name is.
    pub kind: Kind,
    /// The service's or config's name; `*` for all in the group.
    pub name: &'a str,
}

impl<'a> Resource<'a> {
    /// Everything: what a listing of every namespace needs.
    pub const ALL: Resource<'static> = Resource {
        namespace: "*",
        group: "*",
        kind: Kind::Naming,
        name: "*",
    };

    /// A registry service by its name (docs/spec.md §6.1): `N/G::S` is service `S` of
    /// group `G` in namespace `N`; without `N/` the namespace is `public`, without `G::`
    /// the group is `DEFAULT_GROUP`.
    pub fn service(registry_name: &'a str) -> Resource<'a> {
        let (namespace, rest) = match registry_name.split_once('/') {
            Some((namespace, rest)) if !namespace.is_empty() => (namespace, rest),
            _ => (DEFAULT_NAMESPACE, registry_name),
        };
        let (group, name) = rest.split_once("::").unwrap_or(("DEFAULT_GROUP", rest));
        Resource {
            namespace,
            group,
            kind: Kind::Naming,
            name,
        }
    }

    /// A namespace's services of every group (`*` when `namespace` is).
    pub fn namespace(namespace: &'a str) -> Resource<'a> {
        Resource {
            namespace,
            group: "*",
            kind: Kind::Naming,
            name: "*",
        }
    }
}

/// A change to the users, roles or permissions, as the log carries it. Each is applied
/// the same way on every node: a change that does not apply (a user created twice, a
/// role bound to a user that is not there) changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum IdentityChange {
    /// Creates a user, unless one of that name exists.
    CreateUser {
        /// The name.
        username: String,
        /// The password's hash (bcrypt), never the password.
        password_hash: String,
    },
    /// Sets an existing user's password hash.
    SetPassword {
        /// The name.
        username: String,
        /// The new hash.
        password_hash: String,
    },
    /// Removes a user and its role bindings.
    RemoveUser {
        /// The name.
        username: String,
    },
    /// Binds a role to an existing user.
    BindRole {
        /// The role.
        role: String,
        /// The user.
        username: String,
    },
    /// Unbinds a role from one user, or (`username` absent) from every user, and then
    /// the role's permissions go too.
    UnbindRole {
        /// The role.
        role: String,
        /// The user; absent: every user.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
    },
    /// Grants a role an action on a resource pattern.
    Grant {
        /// The role.
        role: String,
        /// `namespace:group:name`, each part a pattern.
        resource: String,
        /// What it may do there.
        action: Action,
    },
    /// Takes a grant back.
    Revoke {
        /// The role.
        role: String,
        /// The resource pattern, as granted.
        resource: String,
        /// The action, as granted.
        action: Action,
    },
}

impl IdentityChange {
    /// Checks every name it carries: present, within [`MAX_IDENTITY_LEN`], no control
    /// characters; a resource of three `:`-separated parts; a hash present.
    pub fn validate(&self) -> Result<(), Error> {
        match self {
            IdentityChange::CreateUser {
                username,
                password_hash,
            }
            | IdentityChange::SetPassword {
                username,
                password_hash,
            } => {
                check_name("username", username)?;
                check_name("password_hash", password_hash)
            }
            IdentityChange::RemoveUser { username } => check_name("username", username),
            IdentityChange::BindRole { role, username } => {
                check_name("role", role)?;
                check_name("username", username)
            }
            IdentityChange::UnbindRole { role, username } => {
                check_name("role", role)?;
                username.as_deref().map_or(Ok(()), |u| check_name("username", u))
            }
            IdentityChange::Grant { role, resource, .. } | IdentityChange::Revoke { role, resource, .. } => {
                check_name("role", role)?;
                check_resource(resource)
            }
        }
    }
}

fn check_name(field: &'static str, value: &str) -> Result<(), Error> {
    let reason = if value.is_empty() {
        "must not be empty".to_owned()
    } else if value.len() > MAX_IDENTITY_LEN {
        format!("must be at most {MAX_IDENTITY_LEN} bytes")
    } else if value.chars().any(char::is_control) {
        format!("must not contain control characters, got {:?}", excerpt(value))
    } else {
        return Ok(());
    };
    Err(Error::InvalidIdentity { field, reason })
}

/// A permission's resource: `namespace:group:name`, three parts, none empty but the
/// namespace (Nacos's id of the default namespace is empty).
pub fn check_resource(resource: &str) -> Result<(), Error> {
    check_name("resource", resource)?;
    let parts: Vec<&str> = resource.splitn(3, ':').collect();
    match parts.as_slice() {
        [_, group, name] if !group.is_empty() && !name.is_empty() => Ok(()),
        _ => Err(Error::InvalidIdentity {
            field: "resource",
            reason: format!(
                "must be namespaceId:group:name (each part may be *), got {:?}",
                excerpt(resource)
            ),
        }),
    }
}

/// The users, role bindings and permissions at one moment, kept as a check reads them:
/// a user's roles by user, a role's grants by role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityState {
    /// How many changes were applied that changed something.
    pub revision: u64,
    /// Each user's password hash, by name.
    pub users: BTreeMap<String, String>,
    /// The roles bound to each user.
    roles: BTreeMap<String, BTreeSet<String>>,
    /// Each role's grants: (resource, action).
    grants: BTreeMap<String, BTreeSet<(String, Action)>>,
}

impl IdentityState {
    /// This state as read from a snapshot, each name checked as a change carrying it would
    /// be.
    pub(crate) fn checked(self) -> Result<IdentityState, Error> {
        let what = |e: Error| Error::InvalidSnapshot(format!("the users and permissions: {e}"));
        for (username, password_hash) in &self.users {
            check_name("username", username).map_err(what)?;
            check_name("password_hash", password_hash).map_err(what)?;
        }
        for (username, role) in self.bindings() {
            check_name("username", username).map_err(what)?;
            check_name("role", role).map_err(what)?;
        }
        for (role, resource, _) in self.permissions() {
            check_name("role", role).map_err(what)?;
            check_resource(resource).map_err(what)?;
        }
        Ok(self)
    }

    /// Every role binding, as (user, role), in order.
    pub fn bindings(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.roles
            .iter()
            .flat_map(|(user, roles)| roles.iter().map(move |role| (user.as_str(), role.as_str())))
    }

    /// Every grant, as (role, resource, action), in order.
    pub fn permissions(&self) -> impl Iterator<Item = (&str, &str, Action)> + '_ {
        self.grants.iter().flat_map(|(role, grants)| {
            grants
                .iter()
                .map(move |(resource, action)| (role.as_str(), resource.as_str(), *action))
        })
    }

    /// Whether `role` holds exactly this grant.
    pub fn has_grant(&self, role: &str, resource: &str, action: Action) -> bool {
        self.grants
            .get(role)
            .is_some_and(|grants| grants.contains(&(resource.to_owned(), action)))
    }

    /// Applies `change`; whether it changed anything.
    fn apply(&mut self, change: &IdentityChange) -> bool {
        match change {
            IdentityChange::CreateUser {
                username,
                password_hash,
            } => {
                if self.users.contains_key(username) {
                    return false;
                }
                self.users.insert(username.clone(), password_hash.clone());
                true
            }
            IdentityChange::SetPassword {
                username,
                password_hash,
            } => match self.users.get_mut(username) {
                Some(hash) if hash != password_hash => {
                    password_hash.clone_into(hash);
                    true
                }
                _ => false,
            },
            IdentityChange::RemoveUser { username } => {
                let removed = self.users.remove(username).is_some();
                if let Some(roles) = self.roles.remove(username) {
                    roles.iter().for_each(|role| self.forget_if_unheld(role));
                }
                removed
            }
            IdentityChange::BindRole { role, username } => {
                self.users.contains_key(username)
                    && self.roles.entry(username.clone()).or_default().insert(role.clone())
            }
            IdentityChange::UnbindRole { role, username } => {
                let mut changed = false;
                for (user, roles) in self.roles.iter_mut() {
                    if username.as_ref().is_none_or(|wanted| wanted == user) {
                        changed |= roles.remove(role);
                    }
                }
                self.roles.retain(|_, roles| !roles.is_empty());
                self.forget_if_unheld(role);
                changed
            }
            IdentityChange::Grant { role, resource, action } => self
                .grants
                .entry(role.clone())
                .or_default()
                .insert((resource.clone(), *action)),
            IdentityChange::Revoke { role, resource, action } => {
                let Some(grants) = self.grants.get_mut(role) else {
                    return false;
                };
                let removed = grants.remove(&(resource.clone(), *action));
                if grants.is_empty() {
                    self.grants.remove(role);
                }
                removed
            }
        }
    }

    /// A role no one holds is no role (Nacos keeps roles only as bindings): its grants go.
    fn forget_if_unheld(&mut self, role: &str) {
        if !self.role_exists(role) {
            self.grants.remove(role);
        }
    }

    /// Whether `change` shows here: what it makes holds (a node that relayed it waits for
    /// this before it answers, so that the caller reads its own write).
    pub fn shows(&self, change: &IdentityChange) -> bool {
        match change {
            IdentityChange::CreateUser { username, .. } => self.users.contains_key(username),
            IdentityChange::SetPassword {
                username,
                password_hash,
            } => self.users.get(username).is_none_or(|hash| hash == password_hash),
            IdentityChange::RemoveUser { username } => !self.users.contains_key(username),
            IdentityChange::BindRole { role, username } => {
                !self.users.contains_key(username) || self.holds(username, role)
            }
            IdentityChange::UnbindRole { role, username } => match username {
                Some(username) => !self.holds(username, role),
                None => !self.role_exists(role),
            },
            IdentityChange::Grant { role, resource, action } => self.has_grant(role, resource, *action),
            IdentityChange::Revoke { role, resource, action } => !self.has_grant(role, resource, *action),
        }
    }

    /// The roles bound to `username`.
    pub fn roles_of<'a>(&'a self, username: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.roles
            .get(username)
            .into_iter()
            .flat_map(|roles| roles.iter().map(String::as_str))
    }

    /// Whether `username` holds `role`.
    pub fn holds(&self, username: &str, role: &str) -> bool {
        self.roles.get(username).is_some_and(|roles| roles.contains(role))
    }

    /// Whether `username` holds the admin role.
    pub fn is_admin(&self, username: &str) -> bool {
        self.holds(username, ADMIN_ROLE)
    }

    /// Whether any user holds the admin role.
    pub fn has_admin(&self) -> bool {
        self.roles.values().any(|roles| roles.contains(ADMIN_ROLE))
    }

    /// Whether a role is bound to any user.
    pub fn role_exists(&self, role: &str) -> bool {
        self.roles.values().any(|roles| roles.contains(role))
    }

    /// Whether `username` exists and may do `need` to `resource`: it holds the admin role,
    /// or a role with a permission whose action covers `need` and whose resource matches.
    pub fn allows(&self, username: &str, resource: &Resource<'_>, need: Need) -> bool {
        if !self.users.contains_key(username) {
            return false;
        }
        let Some(roles) = self.roles.get(username) else {
            return false;
        };
        if roles.contains(ADMIN_ROLE) {
            return true;
        }
        roles.iter().filter_map(|role| self.grants.get(role)).any(|grants| {
            grants
                .iter()
                .any(|(pattern, action)| action.covers(need) && matches(pattern, resource))
        })
    }
}

/// Whether the permission resource `pattern` covers `resource`.
fn matches(pattern: &str, resource: &Resource<'_>) -> bool {
    let mut parts = pattern.splitn(3, ':');
    let (Some(namespace), Some(group), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let namespace = if namespace.is_empty() {
        DEFAULT_NAMESPACE
    } else {
        namespace
    };
    if !glob(namespace, resource.namespace) || !glob(group, resource.group) {
        return false;
    }
    match name.split_once('/') {
        Some((kind, name)) => {
            let wanted = match resource.kind {
                Kind::Naming => "naming",
                Kind::Config => "config",
            };
            glob(kind, wanted) && glob(name, resource.name)
        }
        None => glob(name, resource.name),
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (and
/// nothing else is special).
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The identities a registry keeps, written by [`crate::Registry::apply`].
#[derive(Debug, Default)]
pub struct Identities {
    state: RwLock<IdentityState>,
}

impl Identities {
    /// The state, to read (checks hold it only for the check).
    pub fn read(&self) -> RwLockReadGuard<'_, IdentityState> {
        self.state.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies changes in order; whether any changed something.
    pub(crate) fn apply<'a>(&self, changes: impl Iterator<Item = &'a IdentityChange>) -> bool {
        let mut state = self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut changed = false;
        for change in changes {
            if state.apply(change) {
                state.revision += 1;
                changed = true;
            }
        }
        changed
    }

    /// Replaces the whole state (a restore).
    pub(crate) fn install(&self, state: IdentityState) {
        *self.state.write().unwrap_or_else(std::sync::PoisonError::into_inner) = state;
    }

    /// A copy of the whole state (a snapshot).
    pub fn snapshot(&self) -> IdentityState {
        self.read().clone()
    }
}

#[cfg(test)]
#[path = "identity_tests.rs"]
mod tests;
