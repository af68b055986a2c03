//! The condition check of an all-or-nothing transaction of config writes.

use std::collections::HashMap;

use super::{cas_holds, Config, ConfigKey, ConfigState, ConfigWrite};

impl ConfigState {
    /// The position of the first of `writes` whose condition does not hold, each checked
    /// against the store as the ones before it would leave it; `None`: they all hold.
    pub(super) fn first_failing(&self, writes: &[ConfigWrite<'_>]) -> Option<usize> {
        // What the earlier writes would make of the configs they touch (`None`: removed).
        let mut after: HashMap<&ConfigKey, Option<Config>> = HashMap::new();
        let mut revision = self.revision;
        for (at, write) in writes.iter().enumerate() {
            let current = match after.get(write.key()) {
                Some(simulated) => simulated.as_ref(),
                None => self.configs.get(write.key()).map(|c| &**c),
            };
            if !cas_holds(write.cas(), current) {
                return Some(at);
            }
            match write {
                ConfigWrite::Publish {
                    key, fields, now_ms, ..
                } => {
                    revision += 1;
                    let created = current.map_or(revision, |c| c.created_revision);
                    let config = Config::new((*fields).clone(), *now_ms, *now_ms, created, revision);
                    after.insert(key, Some(config));
                }
                ConfigWrite::Remove { key, .. } => {
                    if current.is_some() {
                        revision += 1;
                    }
                    after.insert(key, None);
                }
                ConfigWrite::Check { .. } => {}
            }
        }
        None
    }
}
