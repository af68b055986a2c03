//! The writes the tests make, each through the one interpreter ([`Registry::apply`]) as a
//! leader makes them: the command checked first (a refusal is the error), then applied.
//! A heartbeat renews what is known and registers the rest, as a leader's does.

use registry_core::{Applied, Command, Error, InstanceMeta, Registry};

/// Registering, unregistering and renewing through [`Command`]s.
pub trait Writes {
    /// Registers `instance` (a change only if it is new or its parameters differ);
    /// answers it with `status: true`.
    fn register(&self, service: &str, instance: &InstanceMeta, now: u64) -> Result<InstanceMeta, Error>;
    /// [`Writes::register`], answering whether it was a change.
    fn upsert_instance(&self, service: &str, instance: &InstanceMeta, now: u64) -> Result<bool, Error>;
    /// Unregisters `instance`; answers it with `status: false`.
    fn unregister(&self, service: &str, instance: &InstanceMeta) -> Result<InstanceMeta, Error>;
    /// [`Writes::unregister`], answering whether it was a change.
    fn remove_instance(&self, service: &str, instance: &InstanceMeta) -> Result<bool, Error>;
    /// A heartbeat: renews a known instance, registers an unknown one (answers `true`).
    fn renew(&self, service: &str, instance: &InstanceMeta, now: u64) -> Result<bool, Error>;
    /// [`Writes::renew`] in several services at once.
    fn renews(&self, services: &[&str], instance: &InstanceMeta, now: u64) -> Result<bool, Error>;
}

fn applied(registry: &Registry, command: Command) -> Result<Applied, Error> {
    command.validate()?;
    Ok(registry.apply(&command, 0))
}

impl Writes for Registry {
    fn register(&self, service: &str, instance: &InstanceMeta, now: u64) -> Result<InstanceMeta, Error> {
        self.upsert_instance(service, instance, now)?;
        Ok(InstanceMeta {
            status: true,
            ..instance.clone()
        })
    }

    fn upsert_instance(&self, service: &str, instance: &InstanceMeta, now: u64) -> Result<bool, Error> {
        let command = Command::Register {
            service: service.to_owned(),
            instance: instance.clone(),
            now_ms: now,
        };
        Ok(applied(self, command)?.changes > 0)
    }

    fn unregister(&self, service: &str, instance: &InstanceMeta) -> Result<InstanceMeta, Error> {
        self.remove_instance(service, instance)?;
        Ok(InstanceMeta {
            status: false,
            ..instance.clone()
        })
    }

    fn remove_instance(&self, service: &str, instance: &InstanceMeta) -> Result<bool, Error> {
        let command = Command::Unregister {
            service: service.to_owned(),
            instance: instance.clone(),
        };
        Ok(applied(self, command)?.changes > 0)
    }

    fn renew(&self, service: &str, instance: &InstanceMeta, now: u64) -> Result<bool, Error> {
        self.renews(&[service], instance, now)
    }

    fn renews(&self, services: &[&str], instance: &InstanceMeta, now: u64) -> Result<bool, Error> {
        let unknown = self.renew_known_only(services, instance, now)?;
        let mut registered = false;
        for service in unknown {
            registered |= self.upsert_instance(&service, instance, now)?;
        }
        Ok(registered)
    }
}
