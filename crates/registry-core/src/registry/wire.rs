//! The seed's snapshot document, written by hand straight from the stored instance texts:
//! no copy of the registry is built, and the bytes are exactly what encoding a
//! [`crate::Snapshot`] would give.

use super::state::{Registry, ServiceView, Slot};

impl Registry {
    /// The snapshot's JSON in the seed's form (docs/spec.md §5), written straight from the stored
    /// instance texts: the same document as encoding [`Registry::snapshot`] (services in
    /// name order, instances in registration order) without `REVISIONS`, and without
    /// building the copy. Like `snapshot`, it holds the lock only to collect one reference
    /// per service.
    pub fn snapshot_json(&self) -> Vec<u8> {
        self.write_snapshot_json(false)
    }

    /// [`Registry::snapshot_json`] plus the `REVISIONS` of a raft registry: the whole
    /// replicated state, as a raft snapshot carries it. Equal to encoding
    /// [`Registry::snapshot`].
    pub fn snapshot_json_with_revisions(&self) -> Vec<u8> {
        self.write_snapshot_json(true)
    }

    pub(super) fn write_snapshot_json(&self, revisions: bool) -> Vec<u8> {
        let (version, services) = self.views();
        write_state_json(&services, version, revisions)
    }
}

/// The seed's snapshot document of `services` at `version` (with `REVISIONS` when
/// asked), written from the stored instance texts.
pub(super) fn write_state_json(services: &[ServiceView], version: u64, revisions: bool) -> Vec<u8> {
    // The whole size up front (a few bytes over): a document of hundreds of megabytes
    // that outgrows its buffer at the end would briefly need twice its size.
    let per_key = 1 + usize::from(revisions);
    let size: usize = services
        .iter()
        .map(|(name, _, view)| {
            let keys: usize = view.slots.iter().map(|s| name.len() + s.url.len() + 26).sum();
            let lists: usize = view.slots.iter().map(|s| s.json.len() + 1).sum();
            2 * name.len() + 32 + lists + keys * per_key
        })
        .sum();
    let mut out = Vec::with_capacity(96 + size);
    out.extend_from_slice(b"{\"REGISTRY\":{");
    for (i, (name, _, view)) in services.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(&mut out, name);
        out.push(b':');
        view.write_list(&mut out);
    }
    out.extend_from_slice(b"},\"VERSIONS\":{");
    for (i, (name, svc_version, _)) in services.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(&mut out, name);
        out.push(b':');
        write_number(&mut out, *svc_version);
    }
    out.extend_from_slice(b"},\"TIMESTAMPS\":");
    write_instance_map(&mut out, services, |slot| Some(slot.renewed()));
    if revisions {
        out.extend_from_slice(b",\"REVISIONS\":");
        write_instance_map(&mut out, services, |slot| Some(slot.revision()).filter(|r| *r != 0));
    }
    out.extend_from_slice(b",\"version\":");
    write_number(&mut out, version);
    out.push(b'}');
    out
}

/// Appends `{"service@url": n, …}` for every instance of `services` that `value` gives a
/// number for, service by service in registration order.
fn write_instance_map(out: &mut Vec<u8>, services: &[ServiceView], value: impl Fn(&Slot) -> Option<u64>) {
    out.push(b'{');
    let mut key = String::new();
    let mut first = true;
    for (name, _, view) in services {
        for slot in &view.slots {
            let Some(n) = value(slot) else {
                continue;
            };
            if !first {
                out.push(b',');
            }
            first = false;
            key.clear();
            key.push_str(name);
            key.push('@');
            key.push_str(&slot.url);
            write_json_str(out, &key);
            out.push(b':');
            write_number(out, n);
        }
    }
    out.push(b'}');
}

/// Appends `n` in decimal, without allocating.
pub(super) fn write_number(out: &mut Vec<u8>, n: u64) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{n}");
}

/// Appends `s` as a JSON string.
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}
