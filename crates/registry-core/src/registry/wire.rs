//! The seed's snapshot document, written by hand straight from the stored instance texts:
//! no copy of the registry is built, and the bytes are exactly what encoding a
//! [`crate::Snapshot`] would give.

use std::io::{self, Write};

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

    /// [`Registry::snapshot_json`] written to `out` a service at a time (in blocks of
    /// 64 KiB or one service's list): a large registry's document is never whole in memory
    /// when `out` compresses or sends it.
    pub fn write_snapshot_json_to(&self, out: &mut impl Write) -> io::Result<()> {
        let (version, services) = self.views();
        write_state_json_to(out, &services, version, false, &[])
    }

    fn write_snapshot_json(&self, revisions: bool) -> Vec<u8> {
        let (version, services) = self.views();
        state_json(&services, version, revisions, &[])
    }
}

/// The seed's snapshot document of `services` at `version` (with `REVISIONS` when
/// asked, and `tail` before the closing brace), written from the stored instance texts
/// into a buffer sized for it up front.
pub(super) fn state_json(services: &[ServiceView], version: u64, revisions: bool, tail: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(document_size(services, revisions) + tail.len());
    // Writing into a Vec cannot fail.
    let _ = write_state_json_to(&mut out, services, version, revisions, tail);
    out
}

/// About the size of the document (a few bytes over): a document of hundreds of
/// megabytes that outgrows its buffer at the end would briefly need twice its size.
fn document_size(services: &[ServiceView], revisions: bool) -> usize {
    let per_key = 1 + usize::from(revisions);
    let size: usize = services
        .iter()
        .map(|(name, _, view)| {
            let keys: usize = view.slots.iter().map(|s| name.len() + s.url().len() + 26).sum();
            let lists: usize = view.slots.iter().map(|s| s.json().len() + 1).sum();
            2 * name.len() + 32 + lists + keys * per_key
        })
        .sum();
    160 + size
}

/// A buffer in front of a writer: pieces are appended to it and handed on in blocks.
struct Blocks<'a, W: Write> {
    buf: Vec<u8>,
    out: &'a mut W,
}

const BLOCK: usize = 64 * 1024;

impl<W: Write> Blocks<'_, W> {
    /// Hands on what has gathered once it is a block.
    fn spill(&mut self) -> io::Result<()> {
        if self.buf.len() >= BLOCK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(self) -> io::Result<()> {
        self.out.write_all(&self.buf)
    }
}

/// [`state_json`] to `out`, a service at a time, with `tail` (more members, each
/// starting with a comma) before the closing brace.
pub(super) fn write_state_json_to<W: Write>(
    out: &mut W,
    services: &[ServiceView],
    version: u64,
    revisions: bool,
    tail: &[u8],
) -> io::Result<()> {
    let mut blocks = Blocks {
        buf: Vec::with_capacity(BLOCK + 4096),
        out,
    };
    blocks.buf.extend_from_slice(b"{\"REGISTRY\":{");
    for (i, (name, _, view)) in services.iter().enumerate() {
        if i > 0 {
            blocks.buf.push(b',');
        }
        write_json_str(&mut blocks.buf, name);
        blocks.buf.push(b':');
        view.write_list(&mut blocks.buf);
        blocks.spill()?;
    }
    blocks.buf.extend_from_slice(b"},\"VERSIONS\":{");
    for (i, (name, svc_version, _)) in services.iter().enumerate() {
        if i > 0 {
            blocks.buf.push(b',');
        }
        write_json_str(&mut blocks.buf, name);
        blocks.buf.push(b':');
        write_number(&mut blocks.buf, *svc_version);
        blocks.spill()?;
    }
    blocks.buf.extend_from_slice(b"},\"TIMESTAMPS\":");
    write_instance_map(&mut blocks, services, |slot| Some(slot.renewed()))?;
    if revisions {
        blocks.buf.extend_from_slice(b",\"REVISIONS\":");
        write_instance_map(&mut blocks, services, |slot| Some(slot.revision()).filter(|r| *r != 0))?;
    }
    blocks.buf.extend_from_slice(b",\"version\":");
    write_number(&mut blocks.buf, version);
    blocks.buf.extend_from_slice(tail);
    blocks.buf.push(b'}');
    blocks.finish()
}

/// Appends `{"service@url": n, …}` for every instance of `services` that `value` gives a
/// number for, service by service in registration order.
fn write_instance_map<W: Write>(
    blocks: &mut Blocks<'_, W>,
    services: &[ServiceView],
    value: impl Fn(&Slot) -> Option<u64>,
) -> io::Result<()> {
    blocks.buf.push(b'{');
    let mut key = String::new();
    let mut first = true;
    for (name, _, view) in services {
        for slot in &view.slots {
            let Some(n) = value(slot) else {
                continue;
            };
            if !first {
                blocks.buf.push(b',');
            }
            first = false;
            key.clear();
            key.push_str(name);
            key.push('@');
            key.push_str(slot.url());
            write_json_str(&mut blocks.buf, &key);
            blocks.buf.push(b':');
            write_number(&mut blocks.buf, n);
        }
        blocks.spill()?;
    }
    blocks.buf.push(b'}');
    Ok(())
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
