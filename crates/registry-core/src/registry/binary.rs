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
//! version, and per instance its canonical JSON, last renewal and revision). Format 2 adds
//! the configs after the services: a head (store revision, how many configs, how many
//! histories), a frame per config, a frame per config history. Format 3 writes a history
//! entry that is the config as it stands (its last publish) as a mark, not a second copy
//! of the content. Format 4 adds one frame after the configs: the users, role bindings and
//! permissions (docs/spec.md §9). Format 5 adds one more: the configs' flags (Consul KV's),
//! as (key, flags) for each config whose flags are not 0. The trailer is
//! the xxh3 of every byte before it, as a little-endian `u64`: a file cut short or changed
//! on disk is refused, never half loaded.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::sync::Arc;

use bincode::Options;
use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigFields, ConfigKey, ConfigState, Revision, RevisionOp};
use crate::error::Error;
use crate::identity::IdentityState;
use crate::instance::InstanceMeta;
use crate::snapshot::{check_service, check_version};

use super::hashing::Hashing;
use super::state::{Registry, Service, ServiceView};
use super::sync::add_instance;

#[path = "binary_configs.rs"]
mod configs;

/// The layout version, the first byte of the binary form. A later layout takes the next
/// number; a reader refuses a number it does not know.
pub const BINARY_FORMAT: u8 = 5;

/// The layout before configs: services only. Still read.
const FORMAT_WITHOUT_CONFIGS: u8 = 1;

/// The first layout with configs, each history entry a whole copy. Still read.
const FORMAT_COPIED_HISTORY: u8 = 2;

/// The last layout without users, roles and permissions. Still read.
const FORMAT_WITHOUT_IDENTITIES: u8 = 3;
/// Format 4 had no configs' flags (format 5 adds a frame of them after the identities).
const FORMAT_WITHOUT_FLAGS: u8 = 4;

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

#[derive(Serialize, Deserialize)]
struct ConfigsHead {
    revision: u64,
    configs: u64,
    histories: u64,
}

/// A config as written (by reference); [`ConfigRead`] reads the same layout.
/// A config's fields as bincode takes them: every one, in order (the log's encoding leaves
/// blank ones out, which a format without field names cannot read back).
type FieldsWritten<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, &'a str, &'a str);
type FieldsRead = (String, String, String, String, String, String, String);

fn fields_written(fields: &ConfigFields) -> FieldsWritten<'_> {
    (
        &fields.content,
        &fields.kind,
        &fields.desc,
        &fields.app_name,
        &fields.tags,
        &fields.encrypted_data_key,
        &fields.src_user,
    )
}

fn fields_read(fields: FieldsRead) -> ConfigFields {
    let (content, kind, desc, app_name, tags, encrypted_data_key, src_user) = fields;
    ConfigFields {
        content,
        kind,
        desc,
        app_name,
        tags,
        encrypted_data_key,
        src_user,
        flags: 0,
    }
}

#[derive(Serialize)]
struct ConfigWritten<'a> {
    key: &'a ConfigKey,
    fields: FieldsWritten<'a>,
    created_ms: u64,
    modified_ms: u64,
    created_revision: u64,
    revision: u64,
}

#[derive(Deserialize)]
struct ConfigRead {
    key: ConfigKey,
    fields: FieldsRead,
    created_ms: u64,
    modified_ms: u64,
    created_revision: u64,
    revision: u64,
}

/// A config's history: per entry its revision, time, what it did, and the config it
/// published (`None`: the config as it stands, written once, in its own frame).
#[derive(Serialize)]
struct HistoryWritten<'a> {
    key: &'a ConfigKey,
    entries: Vec<(u64, u64, RevisionOp, Option<ConfigWritten<'a>>)>,
}

#[derive(Deserialize)]
struct HistoryRead {
    key: ConfigKey,
    entries: Vec<(u64, u64, RevisionOp, Option<ConfigRead>)>,
}

/// A history as format 2 wrote it: every entry a copy.
#[derive(Serialize)]
struct CopiedHistoryWritten<'a> {
    key: &'a ConfigKey,
    entries: Vec<(u64, u64, RevisionOp, ConfigWritten<'a>)>,
}

#[derive(Deserialize)]
struct CopiedHistoryRead {
    key: ConfigKey,
    entries: Vec<(u64, u64, RevisionOp, ConfigRead)>,
}

impl From<CopiedHistoryRead> for HistoryRead {
    fn from(copied: CopiedHistoryRead) -> HistoryRead {
        HistoryRead {
            key: copied.key,
            entries: copied
                .entries
                .into_iter()
                .map(|(revision, at_ms, op, config)| (revision, at_ms, op, Some(config)))
                .collect(),
        }
    }
}

impl<'a> ConfigWritten<'a> {
    fn of(key: &'a ConfigKey, config: &'a Config) -> ConfigWritten<'a> {
        ConfigWritten {
            key,
            fields: fields_written(&config.fields),
            created_ms: config.created_ms,
            modified_ms: config.modified_ms,
            created_revision: config.created_revision,
            revision: config.revision,
        }
    }
}

impl ConfigRead {
    /// The config, checked against the store's rules and its `revision` (its md5 is made
    /// from the content when first asked for).
    fn config(self, revision: u64) -> Result<(ConfigKey, Config), Error> {
        let what = |e: Error| Error::InvalidSnapshot(format!("config {:?}: {e}", self.key.data_id));
        let fields = fields_read(self.fields);
        self.key.validate().map_err(what)?;
        fields.validate().map_err(what)?;
        if self.revision > revision || self.created_revision > self.revision {
            return Err(Error::InvalidSnapshot(format!(
                "config {:?} has revision {} (created at {}) in a store at revision {revision}",
                self.key.data_id, self.revision, self.created_revision
            )));
        }
        let config = Config::new(
            fields,
            self.created_ms,
            self.modified_ms,
            self.created_revision,
            self.revision,
        );
        Ok((self.key, config))
    }
}

/// The configs of a [`Frozen`] registry.
struct FrozenConfigs {
    revision: u64,
    configs: Vec<(Arc<ConfigKey>, Arc<Config>)>,
    history: Vec<(Arc<ConfigKey>, Vec<Arc<Revision>>)>,
}

/// The configs of a [`Decoded`] state.
#[derive(Default)]
struct DecodedConfigs {
    revision: u64,
    configs: BTreeMap<Arc<ConfigKey>, Arc<Config>>,
    history: Vec<(Arc<ConfigKey>, Arc<Revision>)>,
}

impl DecodedConfigs {
    /// Sets the flags of the configs named (every one must exist).
    fn set_flags(&mut self, flags: Vec<(ConfigKey, u64)>) -> Result<(), Error> {
        for (key, value) in flags {
            let Some(config) = self.configs.get_mut(&key) else {
                return Err(Error::InvalidSnapshot(format!(
                    "flags for config {:?}, which is not there",
                    key.data_id
                )));
            };
            Arc::make_mut(config).fields.flags = value;
        }
        Ok(())
    }
}

fn options() -> impl Options {
    bincode::DefaultOptions::new()
}

/// The registry at one moment (one registry version), ready to be written out while
/// writes go on: it holds a reference to each service's list, no copy of it.
pub struct Frozen {
    version: u64,
    services: Vec<ServiceView>,
    configs: FrozenConfigs,
    identities: IdentityState,
}

/// A registry state read from the binary form and checked, not yet in use
/// ([`Registry::install`] puts it in place).
pub struct Decoded {
    version: u64,
    services: HashMap<Arc<str>, Service>,
    configs: DecodedConfigs,
    identities: IdentityState,
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
        self.write_layout(BINARY_FORMAT, out)
    }

    /// Writes layout `format`: [`BINARY_FORMAT`], or (for the tests that read what earlier
    /// builds wrote) an earlier one.
    pub(crate) fn write_layout(&self, format: u8, out: impl Write) -> io::Result<()> {
        let mut out = Hashing::new(out);
        out.write_all(&[format])?;
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
        if format != FORMAT_WITHOUT_CONFIGS {
            self.write_configs(&mut out, &mut frame, format != FORMAT_COPIED_HISTORY)?;
        }
        if format > FORMAT_WITHOUT_IDENTITIES {
            write_frame(&mut out, &mut frame, &self.identities)?;
        }
        if format > FORMAT_WITHOUT_FLAGS {
            let flags: Vec<(&ConfigKey, u64)> = self
                .configs
                .configs
                .iter()
                .filter(|(_, config)| config.fields.flags != 0)
                .map(|(key, config)| (&**key, config.fields.flags))
                .collect();
            write_frame(&mut out, &mut frame, &flags)?;
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
        let state = self.configs.read();
        let mut configs = FrozenConfigs {
            revision: state.revision,
            configs: state
                .configs
                .iter()
                .map(|(key, config)| (key.clone(), config.clone()))
                .collect(),
            history: state
                .history
                .iter()
                .map(|(key, entries)| (key.clone(), entries.iter().cloned().collect()))
                .collect(),
        };
        drop(state);
        // In key order, so that the same state always writes the same bytes.
        configs.history.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Frozen {
            version,
            services,
            configs,
            identities: self.identities.snapshot(),
        }
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
        if !(FORMAT_WITHOUT_CONFIGS..=BINARY_FORMAT).contains(&format[0]) {
            return Err(Error::InvalidSnapshot(format!(
                "binary format {}, this build reads {FORMAT_WITHOUT_CONFIGS} to {BINARY_FORMAT}",
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
        let mut configs = match format[0] {
            FORMAT_WITHOUT_CONFIGS => DecodedConfigs::default(),
            format => decode_configs(&mut input, &mut frame, format == FORMAT_COPIED_HISTORY)?,
        };
        let identities = match format[0] {
            FORMAT_WITHOUT_CONFIGS..=FORMAT_WITHOUT_IDENTITIES => IdentityState::default(),
            _ => {
                read_frame(&mut input, &mut frame)?;
                decode_frame::<IdentityState>(&frame, "the users and permissions")?.checked()?
            }
        };
        if format[0] > FORMAT_WITHOUT_FLAGS {
            read_frame(&mut input, &mut frame)?;
            let flags: Vec<(ConfigKey, u64)> = decode_frame(&frame, "the configs' flags")?;
            configs.set_flags(flags)?;
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
            configs,
            identities,
        })
    }

    /// Replaces the whole state with `decoded`; the registry version becomes its version.
    /// Under the lock the two states are only swapped; the old one is freed after.
    pub fn install(&self, decoded: Decoded) {
        let state = self.fresh_state(decoded.services, decoded.version);
        let configs = decoded.configs;
        let configs = ConfigState::rebuilt(
            configs.configs,
            configs.revision,
            configs.history,
            &self.configs.limits(),
        );
        let mut guard = self.write();
        let old = std::mem::replace(&mut *guard, state);
        self.publish_all(guard);
        drop(old);
        let mut guard = self.configs.write();
        let old = std::mem::replace(&mut *guard, configs);
        self.configs.publish(guard, true);
        drop(old);
        self.identities.install(decoded.identities);
    }
}

/// Reads the configs section (of format 2 when `copied`: every history entry a copy).
fn decode_configs<R: Read>(input: &mut Hashing<R>, frame: &mut Vec<u8>, copied: bool) -> Result<DecodedConfigs, Error> {
    read_frame(input, frame)?;
    let head: ConfigsHead = decode_frame(frame, "the configs' head")?;
    let mut decoded = DecodedConfigs {
        revision: head.revision,
        ..DecodedConfigs::default()
    };
    for _ in 0..head.configs {
        read_frame(input, frame)?;
        let (key, config) = decode_frame::<ConfigRead>(frame, "a config")?.config(head.revision)?;
        if decoded.configs.insert(Arc::new(key), Arc::new(config)).is_some() {
            return Err(Error::InvalidSnapshot("a config is listed twice".to_owned()));
        }
    }
    for _ in 0..head.histories {
        read_frame(input, frame)?;
        let history: HistoryRead = match copied {
            true => decode_frame::<CopiedHistoryRead>(frame, "a config's history")?.into(),
            false => decode_frame(frame, "a config's history")?,
        };
        let key = Arc::new(history.key);
        for (revision, at_ms, op, config) in history.entries {
            let current = decoded.configs.get(&key);
            let config = match config {
                None => current.cloned().ok_or_else(|| {
                    Error::InvalidSnapshot(format!("config {:?}: history of a config not listed", key.data_id))
                })?,
                Some(config) => {
                    let (_, config) = config.config(head.revision)?;
                    // The entry of the config's last publish is the config itself: one copy.
                    let current = current.filter(|current| ***current == config);
                    current.cloned().unwrap_or_else(|| Arc::new(config))
                }
            };
            decoded.history.push((
                key.clone(),
                Arc::new(Revision {
                    revision,
                    at_ms,
                    op,
                    config,
                }),
            ));
        }
    }
    Ok(decoded)
}

#[cfg(test)]
#[path = "binary_tests.rs"]
mod tests;
