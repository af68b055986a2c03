//! `POST /nacos/v1/cs/configs/listener`: the v1 clients' long poll. The form field
//! `Listening-Configs` lists the configs a client holds, each with the md5 it has; the
//! answer lists those whose md5 differs now, or, when none does, the first to change
//! within the client's timeout (`Long-Pulling-Timeout`, less half a second, at least 10 s,
//! at most `--max-wait`), else nothing. `Long-Pulling-Timeout-No-Hangup: true`, or no
//! timeout at all, asks for the answer at once.

use std::time::Duration;

use http::{Request, StatusCode};
use hyper::body::Incoming;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use registry_api::{config_resource, App, FacadeError};
use registry_core::{ConfigKey, Need};

use super::http::{form, text, Answer};
use super::names::named;
use super::ConfigListeners;

/// How many configs one long poll may ask about (Nacos's bound).
const MAX_RECORDS: usize = 10_000;
/// Nacos holds a long poll this much less than the client's timeout...
const EARLY: u64 = 500;
/// ...and at least this long.
const MIN_HOLD: u64 = 10_000;

const WORD: char = '\u{2}';
const LINE: char = '\u{1}';

/// One config a long poll asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    key: ConfigKey,
    /// The tenant as the client sent it (`""`: none, and none is echoed).
    tenant: String,
    /// The md5 the client holds (`""`: it holds nothing).
    md5: String,
}

/// Answers a long poll.
pub(crate) async fn long_poll(app: &App, listeners: &ConfigListeners, request: Request<Incoming>) -> Answer {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .map(str::to_owned)
    };
    let timeout = header("Long-Pulling-Timeout");
    let no_hangup = header("Long-Pulling-Timeout-No-Hangup").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let caller = app.caller(&request);
    let params = form(app, request).await?;
    let records = parse(params.get("Listening-Configs").unwrap_or(""))?;
    if app.auth_enabled() {
        let caller = app.caller_or(caller, &params.credentials());
        for record in &records {
            app.authorize("nacos", &caller, &config_resource(&record.key), Need::Read)?;
        }
    }
    let changed = changed(app, &records);
    let hold = match timeout {
        None => None,
        Some(ms) => Some(
            ms.parse::<u64>()
                .map_err(|_| FacadeError::bad(format!("Long-Pulling-Timeout must be milliseconds, got {ms:?}")))?,
        ),
    };
    let Some(hold) = hold.filter(|_| changed.is_empty() && !no_hangup) else {
        return Ok(answer(listeners, &changed));
    };
    let hold = Duration::from_millis(hold.saturating_sub(EARLY).max(MIN_HOLD)).min(app.limits().max_wait);
    let keys: Vec<ConfigKey> = records.iter().map(|record| record.key.clone()).collect();
    let watching = Watching {
        listeners,
        poll: listeners.watch(&keys),
        keys,
    };
    let deadline = tokio::time::Instant::now() + hold;
    loop {
        // Registered first, then compared: a change in between wakes it.
        let changed = self::changed(app, &records);
        if !changed.is_empty() {
            return Ok(answer(listeners, &changed));
        }
        tokio::select! {
            () = watching.poll.changed() => {}
            () = tokio::time::sleep_until(deadline) => return Ok(answer(listeners, &[])),
        }
    }
}

/// A long poll registered with the listeners, forgotten when the request ends (answered,
/// or dropped with its connection).
struct Watching<'a> {
    listeners: &'a ConfigListeners,
    poll: std::sync::Arc<super::listen::Poll>,
    keys: Vec<ConfigKey>,
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        self.listeners.unwatch(&self.poll, &self.keys);
    }
}

/// The records whose md5 differs from the config's now (a missing config has md5 `""`).
fn changed<'a>(app: &App, records: &'a [Record]) -> Vec<&'a Record> {
    let configs = app.registry().configs();
    records
        .iter()
        .filter(|record| {
            let now = configs.get(&record.key);
            now.as_deref().map_or("", |config| config.md5()) != record.md5
        })
        .collect()
}

/// The changed configs, `dataId^Bgroup[^Btenant]^A` each, URL-encoded as Nacos does.
fn answer(listeners: &ConfigListeners, changed: &[&Record]) -> http::Response<registry_api::Body> {
    listeners
        .counts()
        .polls_answered
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut lines = String::new();
    for record in changed {
        lines.push_str(&record.key.data_id);
        lines.push(WORD);
        lines.push_str(&record.key.group);
        if !record.tenant.is_empty() {
            lines.push(WORD);
            lines.push_str(&record.tenant);
        }
        lines.push(LINE);
    }
    text(StatusCode::OK, url_encode(&lines))
}

/// What Java's `URLEncoder` leaves as it is: letters, digits and `.-*_`.
const URL_ENCODER: &AsciiSet = &NON_ALPHANUMERIC.remove(b'.').remove(b'-').remove(b'*').remove(b'_');

fn url_encode(text: &str) -> String {
    utf8_percent_encode(text, URL_ENCODER).to_string().replace("%20", "+")
}

/// Reads `Listening-Configs`: records `dataId^Bgroup^Bmd5[^Btenant]^A`.
fn parse(field: &str) -> Result<Vec<Record>, FacadeError> {
    let bad = |why: String| FacadeError::bad(format!("invalid Listening-Configs: {why}"));
    if field.trim().is_empty() {
        return Err(bad("it is required and lists at least one config".to_owned()));
    }
    let lines: Vec<&str> = field.split(LINE).filter(|line| !line.is_empty()).collect();
    if lines.len() > MAX_RECORDS {
        return Err(bad(format!("{} configs, at most {MAX_RECORDS}", lines.len())));
    }
    lines
        .into_iter()
        .map(|line| {
            let words: Vec<&str> = line.split(WORD).collect();
            let (data_id, group, md5, tenant) = match words[..] {
                [data_id, group, md5] => (data_id, group, md5, ""),
                [data_id, group, md5, tenant] => (data_id, group, md5, tenant),
                _ => return Err(bad(format!("{line:?} is not dataId, group, md5[, tenant]"))),
            };
            let named = named(Some(data_id), Some(group), Some(tenant)).map_err(bad)?;
            if !md5.is_empty() && (md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit())) {
                return Err(bad(format!("{md5:?} is not an md5")));
            }
            Ok(Record {
                key: named.key,
                tenant: named.tenant,
                md5: md5.to_ascii_lowercase(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_read_with_and_without_a_tenant() {
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        let field = format!("a.yaml\u{2}G\u{2}{md5}\u{1}b\u{2}G\u{2}\u{2}ns\u{1}");
        let records = parse(&field).expect("valid");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].key, ConfigKey::new("public", "G", "a.yaml"));
        assert_eq!((records[0].tenant.as_str(), records[0].md5.as_str()), ("", md5));
        assert_eq!(records[1].key, ConfigKey::new("ns", "G", "b"));
        assert_eq!(records[1].md5, "", "a client holding nothing");
        for bad in [
            "",
            "a\u{2}G\u{1}",
            "a\u{2}G\u{2}nothex\u{1}",
            "a b\u{2}G\u{2}\u{1}",
            "a\u{2}b\u{2}c\u{2}d\u{2}e",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn answers_are_encoded_as_java_encodes_them() {
        assert_eq!(url_encode("a.b-c_d*\u{2}g:1\u{1}"), "a.b-c_d*%02g%3A1%01");
        assert_eq!(url_encode("配 置"), "%E9%85%8D+%E7%BD%AE");
    }
}
