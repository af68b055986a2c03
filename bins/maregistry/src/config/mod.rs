//! Settings: the command line (each flag also from `MAREGISTRY_<FLAG>`, and from the TOML
//! file `--config FILE`, keyed by the flag's name), parsed into a raw form by clap and
//! validated into [`Config`]. Precedence: flags, then the environment, then the file, then
//! the defaults. A bad value stops the program with a message naming it (and the file,
//! when it came from one); nothing falls back to a default silently.
//!
//! By job: `cli` (the clap definition, [`Cli`]), `file` (the TOML layer), `validate` (raw
//! to valid), `units` (the duration and size syntax), `settings` ([`Config`] and [`Mode`], one
//! variant per cluster mode with that mode's settings).

mod cli;
mod file;
mod settings;
#[cfg(test)]
mod tests;
mod units;
mod validate;

pub use cli::{Cli, ClusterMode, GrpcPort, LogFormat, Protocol};
pub use file::SettingsError;
pub use settings::{Admin, Config, Mode, RaftMode, SnapshotMode};
pub use units::{parse_duration, parse_size};
pub use validate::default_max_connections;
