//! `GET /nacos/v1/cs/history...`: a config's kept revisions (Nacos's `HistoryController`):
//! a page of them (`search=accurate`), one (`nid`), the one before another
//! (`history/previous?id=`), and the configs of a namespace (`history/configs`). A
//! revision's id is the store revision of its change.

use serde::Serialize;

use registry_api::{App, FacadeError};
use registry_core::{ConfigKey, Revision, RevisionOp};

use super::http::{ok_json, page, Answer};
use super::v1::{names, Listed};
use crate::v1::{number, Params};

/// A history entry as Nacos answers one (`ConfigHistoryInfo`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    id: String,
    last_id: i64,
    data_id: &'a str,
    group: &'a str,
    tenant: &'a str,
    app_name: &'a str,
    md5: &'a str,
    content: &'a str,
    src_ip: &'a str,
    src_user: &'a str,
    /// `I` (created), `U` (updated) or `D` (removed).
    op_type: &'static str,
    r#type: &'a str,
    created_time: u64,
    last_modified_time: u64,
}

impl<'a> Entry<'a> {
    fn of(key: &'a ConfigKey, entry: &'a Revision) -> Entry<'a> {
        Entry {
            id: entry.revision.to_string(),
            last_id: -1,
            data_id: &key.data_id,
            group: &key.group,
            tenant: &key.namespace,
            app_name: &entry.config.fields.app_name,
            md5: entry.config.md5(),
            content: &entry.config.fields.content,
            src_ip: "",
            src_user: &entry.config.fields.src_user,
            op_type: match entry.op {
                RevisionOp::Created => "I",
                RevisionOp::Updated => "U",
                RevisionOp::Removed => "D",
            },
            r#type: entry.config.kind(),
            created_time: entry.config.created_ms,
            last_modified_time: entry.at_ms,
        }
    }
}

/// Answers `history`, `history/previous` or `history/configs`.
pub(crate) fn serve(app: &App, rest: &str, params: &Params) -> Answer {
    let configs = app.registry().configs();
    match rest {
        "history/configs" => {
            let namespace = match params.get("tenant").map(str::trim) {
                None | Some("") => registry_core::DEFAULT_NAMESPACE,
                Some(tenant) => tenant,
            };
            let found = configs.list(Some(namespace), |_, _| true);
            let listed: Vec<Listed<'_>> = found.iter().map(|(key, config)| Listed::of(key, config)).collect();
            Ok(ok_json(&listed))
        }
        "history/previous" => {
            let key = names(params)?.key;
            let id = revision(params, "id")?;
            let history = configs.history(&key);
            let previous = history
                .iter()
                .find(|entry| entry.revision < id)
                .ok_or_else(|| FacadeError::not_found(format!("no revision before {id} is kept")))?;
            Ok(ok_json(&Entry::of(&key, previous)))
        }
        _ => {
            let key = names(params)?.key;
            if params.get("nid").is_some() {
                let id = revision(params, "nid")?;
                let entry = configs
                    .history_entry(&key, id)
                    .ok_or_else(|| FacadeError::not_found(format!("revision {id} is not kept")))?;
                return Ok(ok_json(&Entry::of(&key, &entry)));
            }
            let history = configs.history(&key);
            let mut entries: Vec<Entry<'_>> = history.iter().map(|entry| Entry::of(&key, entry)).collect();
            // Each entry's `lastId`: the revision before it.
            for (at, entry) in entries.iter_mut().enumerate() {
                entry.last_id = history.get(at + 1).map_or(-1, |e| e.revision as i64);
            }
            let page_no = number(params, "pageNo", 1)?;
            let page_size = number(params, "pageSize", 100)?;
            Ok(ok_json(&page(entries, page_no, page_size)))
        }
    }
}

fn revision(params: &Params, name: &str) -> Result<u64, FacadeError> {
    let text = params
        .get(name)
        .ok_or_else(|| FacadeError::bad(format!("{name} is required")))?;
    text.trim()
        .parse()
        .map_err(|_| FacadeError::bad(format!("{name} must be a revision number, got {text:?}")))
}
