//! [`EurekaView`]: what the Eureka view last answered, and the changes of the last three
//! minutes (`apps/delta`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use registry_core::Registry;
use serde_json::Value;

use crate::instance::{eureka_instance, id_of, with_action};

/// How far back `apps/delta` reaches.
const DELTA_WINDOW_MS: u64 = 3 * 60 * 1000;

/// What the Eureka view saw of the registry at its last look, and the changes since
/// (for `apps/delta`): app (upper case) → instance id → instance object.
/// App (upper case) → instance id → instance object.
type Apps = BTreeMap<String, BTreeMap<String, Value>>;

#[derive(Default)]
pub(crate) struct EurekaView {
    state: Mutex<ViewState>,
}

#[derive(Default)]
struct ViewState {
    /// The registry version at the last look.
    version: Option<u64>,
    /// What the last look answered; shared with the requests that read it.
    apps: Arc<Apps>,
    /// When each instance last changed, for `lastUpdatedTimestamp`.
    updated: HashMap<(String, String), u64>,
    /// Changes of the last few minutes: when, app, the instance with its `actionType`.
    recent: VecDeque<(u64, String, Value)>,
}

impl EurekaView {
    /// The registry as Eureka applications, brought up to date: instances added, changed
    /// or removed since the last look are remembered for the delta.
    pub(crate) fn refresh(&self, registry: &Registry, now: u64) -> Arc<Apps> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let version = registry.registry_version();
        if state.version != Some(version) {
            let (_, services) = registry.services();
            let mut apps: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
            for summary in services.iter().filter(|s| s.instances > 0) {
                let name = summary.name.to_ascii_uppercase();
                for instance in registry.find_all(&summary.name) {
                    let id = id_of(&instance);
                    let key = (name.clone(), id.clone());
                    let updated = state.updated.get(&key).copied().unwrap_or(now);
                    let object = eureka_instance(&instance, &name, updated);
                    apps.entry(name.clone()).or_default().insert(id, object);
                }
            }
            let mut changes = Vec::new();
            for (name, instances) in &apps {
                for (id, object) in instances {
                    let before = state.apps.get(name).and_then(|i| i.get(id));
                    match before {
                        None => changes.push((name.clone(), id.clone(), with_action(object, "ADDED"))),
                        Some(old) if !same_but_times(old, object) => {
                            changes.push((name.clone(), id.clone(), with_action(object, "MODIFIED")))
                        }
                        Some(_) => {}
                    }
                }
            }
            for (name, instances) in state.apps.iter() {
                for (id, object) in instances {
                    if !apps.get(name).is_some_and(|i| i.contains_key(id)) {
                        changes.push((name.clone(), id.clone(), with_action(object, "DELETED")));
                    }
                }
            }
            for (name, id, object) in changes {
                state.updated.insert((name.clone(), id.clone()), now);
                // Answer the change's own time as lastUpdatedTimestamp.
                let object = stamped(object, now);
                if let Some(current) = apps.get_mut(&name).and_then(|i| i.get_mut(&id)) {
                    *current = stamped(current.clone(), now);
                }
                state.recent.push_back((now, name, object));
            }
            let live: std::collections::HashSet<(String, String)> = apps
                .iter()
                .flat_map(|(n, i)| i.keys().map(move |id| (n.clone(), id.clone())))
                .collect();
            state.updated.retain(|key, _| live.contains(key));
            state.apps = Arc::new(apps);
            state.version = Some(version);
        }
        while state
            .recent
            .front()
            .is_some_and(|(at, _, _)| now.saturating_sub(*at) > DELTA_WINDOW_MS)
        {
            state.recent.pop_front();
        }
        Arc::clone(&state.apps)
    }

    /// The changes of the last three minutes, the latest per instance: (app, instance).
    pub(crate) fn recent(&self, now: u64) -> Vec<(String, Value)> {
        let state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut latest: BTreeMap<(String, String), Value> = BTreeMap::new();
        for (at, app, instance) in &state.recent {
            if now.saturating_sub(*at) > DELTA_WINDOW_MS {
                continue;
            }
            let id = instance
                .get("instanceId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            latest.insert((app.clone(), id), instance.clone());
        }
        latest.into_iter().map(|((app, _), instance)| (app, instance)).collect()
    }
}

/// Whether two answers of one instance differ only in their timestamps.
fn same_but_times(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Value::Object(o) = &mut v {
            o.remove("lastUpdatedTimestamp");
            o.remove("lastDirtyTimestamp");
            o.remove("leaseInfo");
            o.remove("actionType");
        }
        v
    };
    strip(a) == strip(b)
}

fn stamped(mut instance: Value, at: u64) -> Value {
    if let Value::Object(o) = &mut instance {
        o.insert("lastUpdatedTimestamp".to_owned(), Value::String(at.to_string()));
    }
    instance
}
