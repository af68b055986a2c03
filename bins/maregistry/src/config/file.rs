//! The `--config FILE` layer: a TOML file keyed by the flags' names, read below the
//! command line and the environment, every key and value checked and traced back to the
//! file when it is wrong.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches};

use super::cli::Cli;

/// A setting that cannot be used: the message names the flag or key, and the file.
#[derive(Debug)]
pub enum SettingsError {
    /// Clap's own error (a bad flag or value on the command line, `--help`, `--version`):
    /// it prints and exits itself.
    Clap(clap::Error),
    /// A problem with the config file.
    File(String),
}

impl Cli {
    /// The settings from `args` (the program name first), the environment and, with
    /// `--config FILE`, that file: flags > environment > file > defaults.
    pub fn load<I, T>(args: I) -> Result<Cli, SettingsError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let matches = Cli::command()
            .try_get_matches_from(&args)
            .map_err(SettingsError::Clap)?;
        let Some(path) = matches.get_one::<PathBuf>("config").cloned() else {
            return Cli::from_arg_matches(&matches).map_err(SettingsError::Clap);
        };
        let (keys, extra) = file_args(&path, &matches)?;
        let mut with_file = args;
        with_file.extend(extra.into_iter().map(OsString::from));
        let matches = Cli::command()
            .try_get_matches_from(&with_file)
            .map_err(|e| SettingsError::File(format!("{}: {}", path.display(), first_line(&e))))?;
        let mut cli = Cli::from_arg_matches(&matches).map_err(SettingsError::Clap)?;
        cli.from_file = Some((path, keys));
        Ok(cli)
    }
}

/// Names the config file's key in a validation `message` about a flag it set.
pub(super) fn trace_to_file(from_file: Option<&(PathBuf, Vec<String>)>, message: String) -> String {
    let Some((path, keys)) = from_file else {
        return message;
    };
    // `--ttl` in the message, not the start of `--ttl-something`.
    let mentions = |key: &str| {
        let flag = format!("--{key}");
        message
            .match_indices(&flag)
            .any(|(at, _)| !message[at + flag.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-'))
    };
    match keys.iter().find(|key| mentions(key)) {
        Some(key) => format!("{message} (key `{key}` in {})", path.display()),
        None => message,
    }
}

/// The settings of the config file at `path` as `--flag=value` arguments, leaving out
/// those the command line or the environment set already. Every key must be a flag's
/// name and every value valid for it.
fn file_args(path: &Path, matches: &clap::ArgMatches) -> Result<(Vec<String>, Vec<String>), SettingsError> {
    let file = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| SettingsError::File(format!("cannot read the config file {file}: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| SettingsError::File(format!("{file} is not valid TOML: {}", e.message())))?;
    let command = Cli::command();
    let (mut keys, mut args) = (Vec::new(), Vec::new());
    for (key, value) in &table {
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()) && !matches!(key.as_str(), "config" | "help" | "version"))
            .ok_or_else(|| {
                SettingsError::File(format!(
                    "unknown key `{key}` in {file}: keys are the flags' names without the dashes (see --help)"
                ))
            })?;
        if matches!(
            matches.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let bad = |expected: &str| {
            SettingsError::File(format!(
                "bad value for key `{key}` in {file}: expected {expected}, got {value}"
            ))
        };
        let text = match (arg.get_action(), value) {
            (ArgAction::SetTrue, toml::Value::Boolean(true)) => {
                args.push(format!("--{key}"));
                keys.push(key.clone());
                continue;
            }
            (ArgAction::SetTrue, toml::Value::Boolean(false)) => continue,
            (ArgAction::SetTrue, _) => return Err(bad("true or false")),
            (_, toml::Value::String(s)) => s.clone(),
            (_, toml::Value::Integer(i)) => i.to_string(),
            (_, toml::Value::Float(f)) => f.to_string(),
            (_, toml::Value::Array(items)) if key == "server-list" => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned).ok_or_else(|| bad("a list of urls")))
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            _ => return Err(bad("a string or a number")),
        };
        let flag = format!("--{key}={text}");
        // Checked alone, so that the message names the key and the file.
        if let Err(e) = Cli::command().try_get_matches_from(["maregistry", flag.as_str()]) {
            return Err(SettingsError::File(format!(
                "bad value for key `{key}` in {file}: {}",
                first_line(&e)
            )));
        }
        args.push(flag);
        keys.push(key.clone());
    }
    Ok((keys, args))
}

/// The first line of clap's message, without its `error: ` prefix.
fn first_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or("");
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}
