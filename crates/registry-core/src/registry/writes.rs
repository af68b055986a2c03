//! Writes: the one interpreter of [`Command`]s ([`Registry::apply`]), which the snapshot
//! mode and the raft log both use, and heartbeats (renewals are not changes, never logged).

use crate::command::{Applied, Command};
use crate::error::Error;
use crate::instance::InstanceMeta;
use crate::service::validate_service_name;

use super::state::{Registry, State};

impl State {
    /// Applies one command, which [`Command::validate`] accepted, as the log entry `index`.
    pub(super) fn apply(&mut self, command: &Command, index: u64) {
        match command {
            Command::Register {
                service,
                instance,
                now_ms,
            } => {
                let json = instance.to_json_with_status(true);
                // A lease the instance cannot declare was refused before it was logged;
                // an old log holding one applies it as no lease, as it always did.
                let lease = instance.lease_ms().unwrap_or(0);
                self.upsert(service, &instance.url(), &json, *now_ms, index, lease);
            }
            Command::Unregister { service, instance } => {
                self.remove(service, &instance.url(), None);
            }
            Command::Evict { victims, .. } => {
                for victim in victims {
                    self.remove(&victim.service, &victim.url, Some(victim.revision));
                }
            }
            Command::Batch { commands } => {
                for command in commands {
                    self.apply(command, index);
                }
            }
            // The config store's, applied by `Registry::apply` beside these.
            Command::PublishConfig { .. }
            | Command::RemoveConfig { .. }
            | Command::CheckConfig { .. }
            | Command::ConfigTransaction { .. }
            | Command::Identity { .. } => {}
        }
    }
}

impl Registry {
    /// Applies one command at position `index` of a log (docs/spec.md §7): a pure function
    /// of the registry, the command and the index, so that every node that applies the same
    /// log computes the same registry and versions. This is the one interpreter of
    /// commands: the raft state machine calls it for each committed entry, the snapshot
    /// mode for each write its leader accepts (with an index of its own). A command that
    /// breaks a rule of the data model ([`Command::validate`]) is applied as nothing
    /// (`rejected`), the same way on every node; a batch is applied whole or not at all.
    pub fn apply(&self, command: &Command, index: u64) -> Applied {
        if command.validate().is_err() {
            return Applied {
                version: self.registry_version(),
                changes: 0,
                rejected: true,
                configs: Vec::new(),
            };
        }
        if command.changes_identities() {
            let mut changes = Vec::with_capacity(1);
            command.each_identity_change(&mut changes);
            self.identities.apply(changes.into_iter());
            if let Command::Identity { .. } = command {
                return Applied {
                    version: self.registry_version(),
                    ..Applied::default()
                };
            }
        }
        if command.writes_configs() {
            return self.apply_with_configs(command, index);
        }
        if let Command::Register {
            service,
            instance,
            now_ms,
        } = command
        {
            return self.register(service, instance, *now_ms, index);
        }
        let mut guard = self.write();
        let before = guard.version;
        guard.apply(command, index);
        self.applied(guard, before)
    }

    /// [`Registry::apply`] of a registration. Of a known instance with the same parameters
    /// it only renews it (and records the entry that registered it last): the shared lock
    /// is enough. Its text and url are made once, for both tries.
    fn register(&self, service: &str, instance: &InstanceMeta, now: u64, index: u64) -> Applied {
        let (json, url) = (instance.to_json_with_status(true), instance.url());
        if self.renew_known(service, &url, Some(&json), now, Some(index)) {
            return Applied {
                version: self.registry_version(),
                changes: 0,
                rejected: false,
                configs: Vec::new(),
            };
        }
        let mut guard = self.write();
        let before = guard.version;
        // A lease the instance cannot declare was refused before it was logged; an old log
        // holding one applies it as no lease, as it always did.
        guard.upsert(service, &url, &json, now, index, instance.lease_ms().unwrap_or(0));
        self.applied(guard, before)
    }

    /// [`Registry::apply`] of a command that writes configs: its registry part (a batch
    /// may hold both) under the registry's lock, then its config writes, in order, under
    /// the config store's. The two stores are independent, so the order between them does
    /// not matter.
    fn apply_with_configs(&self, command: &Command, index: u64) -> Applied {
        let mut applied = match command {
            Command::Batch { .. } => {
                let mut guard = self.write();
                let before = guard.version;
                guard.apply(command, index);
                self.applied(guard, before)
            }
            _ => Applied {
                version: self.registry_version(),
                ..Applied::default()
            },
        };
        let mut writes = Vec::with_capacity(1);
        command.each_config_write(&mut writes);
        applied.configs = match command {
            Command::ConfigTransaction { .. } => self.configs.apply_all_or_nothing(writes),
            _ => self.configs.apply(writes.into_iter()),
        };
        applied
    }

    /// What a write did, from the version `before` it, once published.
    fn applied(&self, guard: std::sync::RwLockWriteGuard<'_, State>, before: u64) -> Applied {
        let applied = Applied {
            version: guard.version,
            changes: guard.version - before,
            rejected: false,
            configs: Vec::new(),
        };
        self.publish(guard);
        applied
    }

    /// A heartbeat that registers nothing: renews `instance` in each of `services` where it
    /// is registered, and answers the services where it is not (a raft leader turns those
    /// into register commands). All names are checked before anything is touched.
    pub fn renew_known_only(&self, services: &[&str], instance: &InstanceMeta, now: u64) -> Result<Vec<String>, Error> {
        for service in services {
            validate_service_name(service)?;
        }
        instance.validate()?;
        self.counts.renewed(services.len());
        let url = instance.url();
        Ok(services
            .iter()
            .filter(|service| !self.renew_known(service, &url, None, now, None))
            .map(|service| (*service).to_owned())
            .collect())
    }

    /// Renews the instance at `url` in `service` if it is registered there: a heartbeat of
    /// an instance whose name and url were checked when it was registered (a connection's
    /// instances, renewed by the node holding the connection), without checking them again.
    /// Not a change. Answers whether it was there.
    pub fn renew_url(&self, service: &str, url: &str, now: u64) -> bool {
        let renewed = self.renew_known(service, url, None, now, None);
        if renewed {
            self.counts.renewed(1);
        }
        renewed
    }

    /// Renews `url` under `service` if it is registered (and, when `same_json` is given,
    /// encodes to exactly that text, i.e. has the same parameters), under the shared lock,
    /// recording `revision` as the entry that registered it last when one is given.
    /// Returns whether it did.
    pub(super) fn renew_known(
        &self,
        service: &str,
        url: &str,
        same_json: Option<&str>,
        now: u64,
        revision: Option<u64>,
    ) -> bool {
        let state = self.read();
        let Some(slot) = state.services.get(service).and_then(|svc| svc.slot(url)) else {
            return false;
        };
        if same_json.is_some_and(|json| slot.json() != json) {
            return false;
        }
        slot.renew(now);
        if let Some(revision) = revision {
            slot.set_revision(revision);
        }
        true
    }
}
