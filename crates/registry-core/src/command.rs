use serde::{Deserialize, Serialize};

use crate::config::{Cas, ConfigFields, ConfigKey, ConfigOutcome, ConfigWrite};
use crate::error::{excerpt, Error};
use crate::identity::IdentityChange;
use crate::instance::InstanceMeta;
use crate::service::{is_bidi_control, validate_service_name};

/// A change to the registry as a replicated log carries it (docs/spec.md §7).
///
/// Applying a command ([`crate::Registry::apply`]) is a pure function of the registry and
/// the command's position in the log: the leader's clock travels inside the command, and
/// versions move exactly as docs/spec.md §2 says (+1 per change), so every node that applies the
/// same log computes the same registry and the same versions. Heartbeats of known
/// instances are not commands; they stay in the leader's memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Registers `instance` under `service` (or replaces its parameters), renewed at
    /// `now_ms`. Also what a heartbeat of an unknown instance becomes.
    Register {
        /// The service name.
        service: String,
        /// The instance.
        instance: InstanceMeta,
        /// The leader's clock when it accepted the request, ms since the epoch.
        now_ms: u64,
    },
    /// Removes `instance` (by identity) from `service`.
    Unregister {
        /// The service name.
        service: String,
        /// The instance; only its identity matters.
        instance: InstanceMeta,
    },
    /// Several commands applied in order as one log entry: a leader groups the writes
    /// that arrive together, so that one log append (and one fsync on each node) carries
    /// them all.
    Batch {
        /// The commands, in the order they are applied.
        commands: Vec<Command>,
    },
    /// Removes the instances the leader found expired at `now_ms`, each only if it was not
    /// registered again after the leader decided (its revision still matches).
    Evict {
        /// The leader's clock when it decided, ms since the epoch.
        now_ms: u64,
        /// What to remove.
        victims: Vec<Victim>,
    },
    /// Publishes a config (creates it, or replaces what it holds), if `cas` holds.
    PublishConfig {
        /// Which config.
        key: ConfigKey,
        /// What it holds from now on.
        fields: ConfigFields,
        /// The condition on the config as it is, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cas: Option<Cas>,
        /// The leader's clock when it accepted the request, ms since the epoch.
        now_ms: u64,
    },
    /// Changes the users, roles or permissions.
    Identity {
        /// What changes.
        change: IdentityChange,
    },
    /// Removes a config, if `cas` holds.
    RemoveConfig {
        /// Which config.
        key: ConfigKey,
        /// The condition on the config as it is, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cas: Option<Cas>,
        /// The leader's clock when it accepted the request, ms since the epoch.
        now_ms: u64,
    },
    /// A condition on a config that writes nothing: in a [`Command::ConfigTransaction`], the
    /// transaction applies only if it holds.
    CheckConfig {
        /// Which config.
        key: ConfigKey,
        /// What must hold of it.
        cas: Cas,
    },
    /// Config publishes, removals and checks applied in order, all or nothing: when one's
    /// condition does not hold (as the earlier ones leave the store), none is applied.
    ConfigTransaction {
        /// The commands: [`Command::PublishConfig`], [`Command::RemoveConfig`] and
        /// [`Command::CheckConfig`] only.
        commands: Vec<Command>,
    },
}

impl Command {
    /// Checks every rule of the data model the command must keep: each service name and
    /// instance of a registration or unregistration, those of a batch all of them (one
    /// bad command refuses the whole batch). [`crate::Registry::apply`] applies a command
    /// that fails this as nothing; a leader checks before it accepts a write, so the
    /// client hears why.
    pub fn validate(&self) -> Result<(), Error> {
        match self {
            Command::Register { service, instance, .. } | Command::Unregister { service, instance } => {
                validate_service_name(service)?;
                instance.validate()
            }
            Command::Batch { commands } => commands.iter().try_for_each(Command::validate),
            Command::Evict { .. } => Ok(()),
            Command::PublishConfig { key, fields, .. } => {
                key.validate()?;
                fields.validate()
            }
            Command::RemoveConfig { key, .. } | Command::CheckConfig { key, .. } => key.validate(),
            Command::Identity { change } => change.validate(),
            Command::ConfigTransaction { commands } => commands.iter().try_for_each(|command| match command {
                Command::PublishConfig { .. } | Command::RemoveConfig { .. } | Command::CheckConfig { .. } => {
                    command.validate()
                }
                _ => Err(Error::InvalidConfig {
                    field: "transaction",
                    reason: "holds only config publishes, removals and checks".to_owned(),
                }),
            }),
        }
    }

    /// Whether the command is, or a batch holds, an identity change.
    pub fn changes_identities(&self) -> bool {
        match self {
            Command::Identity { .. } => true,
            Command::Batch { commands } => commands.iter().any(Command::changes_identities),
            _ => false,
        }
    }

    /// The identity changes of the command, in order.
    pub(crate) fn each_identity_change<'a>(&'a self, out: &mut Vec<&'a IdentityChange>) {
        match self {
            Command::Identity { change } => out.push(change),
            Command::Batch { commands } => commands.iter().for_each(|command| command.each_identity_change(out)),
            _ => {}
        }
    }

    /// Whether the command is, or a batch holds, a config write.
    pub fn writes_configs(&self) -> bool {
        match self {
            Command::PublishConfig { .. }
            | Command::RemoveConfig { .. }
            | Command::CheckConfig { .. }
            | Command::ConfigTransaction { .. } => true,
            Command::Batch { commands } => commands.iter().any(Command::writes_configs),
            _ => false,
        }
    }

    /// How many config writes the command is or holds: how many [`ConfigOutcome`]s
    /// applying it answers.
    pub fn config_writes(&self) -> usize {
        match self {
            Command::PublishConfig { .. } | Command::RemoveConfig { .. } | Command::CheckConfig { .. } => 1,
            Command::Batch { commands } | Command::ConfigTransaction { commands } => {
                commands.iter().map(Command::config_writes).sum()
            }
            _ => 0,
        }
    }

    /// The config writes of the command, in order.
    pub(crate) fn each_config_write<'a>(&'a self, out: &mut Vec<ConfigWrite<'a>>) {
        match self {
            Command::PublishConfig {
                key,
                fields,
                cas,
                now_ms,
            } => out.push(ConfigWrite::Publish {
                key,
                fields,
                cas: cas.as_ref(),
                now_ms: *now_ms,
            }),
            Command::RemoveConfig { key, cas, now_ms } => out.push(ConfigWrite::Remove {
                key,
                cas: cas.as_ref(),
                now_ms: *now_ms,
            }),
            Command::CheckConfig { key, cas } => out.push(ConfigWrite::Check { key, cas }),
            Command::Batch { commands } | Command::ConfigTransaction { commands } => {
                commands.iter().for_each(|command| command.each_config_write(out))
            }
            _ => {}
        }
    }

    /// The rules a write must keep that were added after logs were written, beyond
    /// [`Command::validate`] (which [`crate::Registry::apply`] checks anyway): no
    /// bidirectional controls (Unicode's `Bidi_Control`) in a registration's service name, host
    /// or context. Checked where a write comes in, never when a log is applied, so that an
    /// old log applies as it always did and a registration made before the rule can still
    /// be removed.
    pub fn validate_new(&self) -> Result<(), Error> {
        match self {
            Command::Register { service, instance, .. } => validate_new_registration(service, instance),
            Command::Batch { commands } => commands.iter().try_for_each(Command::validate_new),
            Command::Unregister { .. }
            | Command::Evict { .. }
            | Command::PublishConfig { .. }
            | Command::RemoveConfig { .. }
            | Command::CheckConfig { .. }
            | Command::ConfigTransaction { .. }
            | Command::Identity { .. } => Ok(()),
        }
    }
}

/// The rules of [`Command::validate_new`] for a registration of `instance` in `service`: no
/// bidirectional controls in the service name, host or context.
pub fn validate_new_registration(service: &str, instance: &InstanceMeta) -> Result<(), Error> {
    // Every bidirectional control is outside ASCII: ASCII text (the usual case) is checked
    // a word at a time.
    let has_bidi = |text: &str| !text.is_ascii() && text.chars().any(is_bidi_control);
    if has_bidi(service) {
        return Err(Error::InvalidServiceName {
            name: excerpt(service),
            reason: "must not contain bidirectional controls (U+202E and the like), which make it display other \
                     than it reads",
        });
    }
    for (field, text) in [("host", &instance.host), ("context", &instance.context)] {
        if has_bidi(text) {
            return Err(Error::InvalidInstance {
                field: field.to_owned(),
                reason: format!(
                    "must not contain bidirectional controls (U+202E and the like), got {:?}",
                    excerpt(text)
                ),
            });
        }
    }
    Ok(())
}

/// One instance an [`Command::Evict`] removes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Victim {
    /// The service it is registered under.
    pub service: String,
    /// Its url (identity).
    pub url: String,
    /// The log index of its last registration when the leader decided: a registration
    /// applied since then changes it, and the instance stays.
    pub revision: u64,
}

/// What applying a command did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The registry version after the command.
    pub version: u64,
    /// How many changes (docs/spec.md §2) it made: 0 for a registration that changed nothing, an
    /// unregistration of an unknown instance or an eviction whose victims were all
    /// registered again.
    pub changes: u64,
    /// Whether the command (for a batch: one of its commands) broke a rule of the data
    /// model ([`Command::validate`]) and was applied as nothing (a batch: none of it). The
    /// leader validates before proposing, so this is only seen for a log written by
    /// another program.
    pub rejected: bool,
    /// What each config write of the command did, in order ([`Command::config_writes`]
    /// of them); empty for the registry's own commands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<ConfigOutcome>,
}

impl Applied {
    /// The part of a batch's outcome that belongs to its commands `first..first + count`
    /// of config writes: what a writer whose command went into a shared batch is told.
    pub fn part(&self, first: usize, count: usize) -> Applied {
        Applied {
            version: self.version,
            changes: self.changes,
            rejected: self.rejected,
            configs: self.configs.iter().skip(first).take(count).copied().collect(),
        }
    }
}

#[cfg(test)]
mod new_write_tests {
    use super::*;

    fn register(service: &str, host: &str) -> Command {
        Command::Register {
            service: service.to_owned(),
            instance: InstanceMeta::new("http", host, 80, "").expect("an instance"),
            now_ms: 0,
        }
    }

    #[test]
    fn a_new_registration_refuses_bidirectional_controls_a_log_keeps_them() {
        assert!(register("svc", "10.0.0.1").validate_new().is_ok());
        for bad in [
            register("svc\u{202e}", "h"),
            register("svc", "h\u{2066}x"),
            register("s", "\u{200f}h"),
        ] {
            assert!(bad.validate_new().is_err(), "{bad:?}");
            assert!(bad.validate().is_ok(), "an old log applies as it always did: {bad:?}");
            let batch = Command::Batch {
                commands: vec![register("ok", "h"), bad.clone()],
            };
            assert!(batch.validate_new().is_err());
        }
        let legacy = Command::Unregister {
            service: "svc\u{202e}".to_owned(),
            instance: InstanceMeta::new("http", "h", 80, "").expect("an instance"),
        };
        assert!(
            legacy.validate_new().is_ok(),
            "what was registered before can be removed"
        );
    }
}
