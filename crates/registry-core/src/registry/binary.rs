//! The registry's compact binary form: how a raft node writes its snapshot to disk and
//! sends it to another node (docs/spec.md §7). JSON stays the form clients see.
//!
//! Both directions stream, one service at a time, so that neither writing nor reading a
//! registry of a million instances holds a second copy of it: the writer goes over the
//! frozen per-service views, the reader builds the new state as frames arrive.
//!
//! Layout: one format byte ([`BINARY_FORMAT`]), then frames, then a trailer. A frame is a
//! little-endian `u32` length and that many bytes of bincode (varint integers): first the
//! head (registry version, number of services), then one frame per service (name,
//! version, and per instance its canonical JSON, last renewal and revision). The trailer is
//! the xxh3 of every byte before it, as a little-endian `u64`: a file cut short or changed
//! on disk is refused, never half loaded.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

use bincode::Options;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::error::Error;
use crate::instance::InstanceMeta;
use crate::snapshot::{check_service, check_version};

use super::state::{Registry, Service, ServiceView};
use super::sync::add_instance;

/// The layout version, the first byte of the binary form. A later layout takes the next
/// number; a reader refuses a number it does not know.
pub const BINARY_FORMAT: u8 = 1;

/// The largest frame a reader accepts: a corrupt length must not make it allocate
/// gigabytes. One service of 4 million instances fits.
const MAX_FRAME: u64 = 1 << 30;

#[derive(Serialize, Deserialize)]
struct Head {
    version: u64,
    services: u64,
}

#[derive(Serialize, Deserialize)]
struct ServiceFrame<'a> {
    #[serde(borrow)]
    name: &'a str,
    version: u64,
    #[serde(borrow)]
    instances: Vec<InstanceFrame<'a>>,
}

#[derive(Serialize, Deserialize)]
struct InstanceFrame<'a> {
    #[serde(borrow)]
    json: &'a str,
    renewed: u64,
    revision: u64,
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
}

/// The registry at one moment (one registry version), ready to be written out while
/// writes go on: it holds a reference to each service's list, no copy of it.
pub struct Frozen {
    version: u64,
    services: Vec<ServiceView>,
}

/// A registry state read from the binary form and checked, not yet in use
/// ([`Registry::install`] puts it in place).
pub struct Decoded {
    version: u64,
    services: HashMap<Arc<str>, Service>,
}

impl Decoded {
    /// The registry version it was taken at.
    pub fn version(&self) -> u64 {
        self.version
    }
}

impl Frozen {
    /// Writes the binary form to `out` (which the caller buffers), one service at a time.
    /// Renewal times are read as they are when each service is written.
    pub fn write_binary(&self, out: impl Write) -> io::Result<()> {
        let mut out = Hashing::new(out);
        out.write_all(&[BINARY_FORMAT])?;
        let mut frame = Vec::with_capacity(64 * 1024);
        let head = Head {
            version: self.version,
            services: self.services.len() as u64,
        };
        write_frame(&mut out, &mut frame, &head)?;
        for (name, version, view) in &self.services {
            let service = ServiceFrame {
                name,
                version: *version,
                instances: view
                    .slots
                    .iter()
                    .map(|slot| InstanceFrame {
                        json: slot.json(),
                        renewed: slot.renewed(),
                        revision: slot.revision(),
                    })
                    .collect(),
            };
            write_frame(&mut out, &mut frame, &service)?;
        }
        let digest = out.digest();
        out.inner.write_all(&digest.to_le_bytes())?;
        out.inner.flush()
    }
}

fn write_frame<W: Write>(out: &mut Hashing<W>, frame: &mut Vec<u8>, value: &impl Serialize) -> io::Result<()> {
    frame.clear();
    options()
        .serialize_into(&mut *frame, value)
        .map_err(|e| io::Error::other(format!("encoding a snapshot frame: {e}")))?;
    let len = u32::try_from(frame.len()).map_err(|_| io::Error::other("a service too large for one frame"))?;
    out.write_all(&len.to_le_bytes())?;
    out.write_all(frame)
}

/// Reads one frame into `frame`.
fn read_frame<R: Read>(input: &mut Hashing<R>, frame: &mut Vec<u8>) -> Result<(), Error> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len).map_err(|e| cut_short("a frame length", e))?;
    let len = u64::from(u32::from_le_bytes(len));
    if len > MAX_FRAME {
        return Err(Error::InvalidSnapshot(format!("a frame of {len} bytes (corrupt)")));
    }
    frame.clear();
    // Grows as the bytes arrive: a corrupt length reads to the end of input, no further.
    let read = input
        .by_ref()
        .take(len)
        .read_to_end(frame)
        .map_err(|e| cut_short("a frame", e))?;
    if read as u64 != len {
        return Err(Error::InvalidSnapshot(format!(
            "the input ends inside a frame ({read} of {len} bytes)"
        )));
    }
    Ok(())
}

fn cut_short(what: &str, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::InvalidSnapshot(format!("the input ends before {what}")),
        _ => Error::InvalidSnapshot(format!("reading {what}: {e}")),
    }
}

fn decode_frame<'a, T: Deserialize<'a>>(frame: &'a [u8], what: &str) -> Result<T, Error> {
    options()
        .deserialize(frame)
        .map_err(|e| Error::InvalidSnapshot(format!("{what} does not decode: {e}")))
}

impl Registry {
    /// The whole state at this moment, for [`Frozen::write_binary`]. Holds the lock only to
    /// collect one reference per service.
    pub fn frozen(&self) -> Frozen {
        let (version, services) = self.views();
        Frozen { version, services }
    }

    /// Reads the binary form from `input` (which the caller buffers) and checks every
    /// rule a snapshot must keep (as [`crate::Snapshot::validate`]) and the trailer's
    /// checksum. The state is built as it is read; nothing else is held.
    pub fn decode_binary(input: impl Read) -> Result<Decoded, Error> {
        let mut input = Hashing::new(input);
        let mut format = [0u8; 1];
        input
            .read_exact(&mut format)
            .map_err(|e| cut_short("the format byte", e))?;
        if format[0] != BINARY_FORMAT {
            return Err(Error::InvalidSnapshot(format!(
                "binary format {}, this build reads {BINARY_FORMAT}",
                format[0]
            )));
        }
        let mut frame = Vec::with_capacity(64 * 1024);
        read_frame(&mut input, &mut frame)?;
        let head: Head = decode_frame(&frame, "the head")?;
        let mut services: HashMap<Arc<str>, Service> =
            HashMap::with_capacity(usize::try_from(head.services.min(1 << 20)).unwrap_or(0));
        let (mut key, mut json) = (String::new(), Vec::with_capacity(256));
        for _ in 0..head.services {
            read_frame(&mut input, &mut frame)?;
            let service: ServiceFrame<'_> = decode_frame(&frame, "a service")?;
            check_service(service.name)?;
            check_version(service.name, service.version, head.version)?;
            let mut svc = Service::named(Arc::from(service.name));
            svc.version = service.version;
            for instance in &service.instances {
                let meta = InstanceMeta::from_json(instance.json.as_bytes())
                    .map_err(|e| Error::InvalidSnapshot(format!("service {:?}: {e}", service.name)))?;
                add_instance(
                    &mut svc,
                    &meta,
                    instance.renewed,
                    instance.revision,
                    &mut key,
                    &mut json,
                )?;
            }
            if services.insert(svc.name.clone(), svc).is_some() {
                return Err(Error::InvalidSnapshot(format!(
                    "service {:?} is listed twice",
                    service.name
                )));
            }
        }
        let expected = input.digest();
        let mut trailer = [0u8; 8];
        input
            .inner
            .read_exact(&mut trailer)
            .map_err(|e| cut_short("the checksum", e))?;
        if u64::from_le_bytes(trailer) != expected {
            return Err(Error::InvalidSnapshot(
                "the checksum does not match: the data was changed or damaged".to_owned(),
            ));
        }
        Ok(Decoded {
            version: head.version,
            services,
        })
    }

    /// Replaces the whole state with `decoded`; the registry version becomes its version.
    /// Under the lock the two states are only swapped; the old one is freed after.
    pub fn install(&self, decoded: Decoded) {
        let state = self.fresh_state(decoded.services, decoded.version);
        let mut guard = self.write();
        let old = std::mem::replace(&mut *guard, state);
        self.publish_all(guard);
        drop(old);
    }
}

/// A reader or writer that hashes every byte that passes through it.
struct Hashing<T> {
    inner: T,
    hash: Xxh3,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Hashing<T> {
        Hashing {
            inner,
            hash: Xxh3::new(),
        }
    }

    fn digest(&self) -> u64 {
        self.hash.digest()
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}
