//! Moving configs in and out in the Java server's zip layouts (`ConfigController`
//! `exportConfig`, `exportConfigV2`, `importAndPublishConfig`): each config an entry
//! `group/dataId` holding its content; `export=true` adds `.meta.yml` (a line
//! `group.dataId.app=appName` per config with an app name, the data id's last `.` written
//! `~`), `exportV2=true` adds `.metadata.yml` (YAML: `metadata`, a list of `dataId`,
//! `group`, `type`, `appName`, `desc`). An import reads either, and publishes each config
//! in order under its `policy`: `ABORT` stops at the first that exists (those before it
//! stay), `SKIP` leaves existing ones, `OVERWRITE` replaces them.

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read, Write};

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};
use yaml_rust2::{Yaml, YamlLoader};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use registry_api::answer::{json as json_answer, typed};
use registry_api::request::read_body;
use registry_api::{App, Body, FacadeError, Origin};
use registry_core::{Cas, ConfigFields, ConfigKey};

use super::http::{compact_date, no_cache, Answer};
use super::names::named;
use super::v1::glob;
use super::{known_type, publish, ConfigListeners, Written};
use crate::v1::Params;

const META: &str = ".meta.yml";
const METADATA: &str = ".metadata.yml";

/// `GET configs?export=true` (`v2`: `exportV2=true`): the configs of `tenant` matching
/// `dataId` (`*` is any text), `group`, `appName` and `ids`, as a zip.
pub(crate) fn export(app: &App, params: &Params, v2: bool) -> Answer {
    let namespace = match params.get("tenant").map(str::trim) {
        None | Some("") => registry_core::DEFAULT_NAMESPACE,
        Some(tenant) => tenant,
    };
    let ids: HashSet<u64> = match params.get("ids") {
        None => HashSet::new(),
        Some(ids) => ids
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(|id| {
                id.parse()
                    .map_err(|_| FacadeError::bad(format!("ids holds {id:?}, not a config id")))
            })
            .collect::<Result<_, _>>()?,
    };
    let (data_id, group, app_name) = (params.get("dataId"), params.get("group"), params.get("appName"));
    let found = app.registry().configs().list(Some(namespace), |key, config| {
        data_id.is_none_or(|pattern| glob(pattern, &key.data_id))
            && group.is_none_or(|group| key.group == group)
            && app_name.is_none_or(|name| config.fields.app_name == name)
            && (ids.is_empty() || ids.contains(&config.created_revision))
    });
    let mut entries: Vec<(String, String)> = found
        .iter()
        .map(|(key, config)| (format!("{}/{}", key.group, key.data_id), config.fields.content.clone()))
        .collect();
    if v2 {
        entries.push((METADATA.to_owned(), metadata_yaml(&found)));
    } else {
        let meta: String = found
            .iter()
            .filter(|(_, config)| !config.fields.app_name.is_empty())
            .map(|(key, config)| {
                format!(
                    "{}.{}.app={}\r\n",
                    key.group,
                    tilde(&key.data_id),
                    config.fields.app_name
                )
            })
            .collect();
        if !meta.is_empty() {
            entries.push((META.to_owned(), meta));
        }
    }
    let zip = zip_of(&entries).map_err(|e| FacadeError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let mut response = no_cache(typed(StatusCode::OK, Bytes::from(zip), "application/zip"));
    let stamp = compact_date(app.now_ms());
    if let Ok(value) = HeaderValue::from_str(&format!("attachment;filename=nacos_config_export_{stamp}.zip")) {
        response.headers_mut().insert(http::header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// The data id as `.meta.yml` keys it: its last `.` written `~`.
fn tilde(data_id: &str) -> String {
    match data_id.rfind('.') {
        Some(at) => format!("{}~{}", &data_id[..at], &data_id[at + 1..]),
        None => data_id.to_owned(),
    }
}

/// `.metadata.yml` of `found`: every value a double-quoted YAML scalar (JSON's escapes
/// are YAML's), blank ones left out as the Java server leaves nulls out.
fn metadata_yaml(found: &[(std::sync::Arc<ConfigKey>, std::sync::Arc<registry_core::Config>)]) -> String {
    let mut out = String::from("metadata:\n");
    for (key, config) in found {
        let mut first = true;
        for (name, value) in [
            ("appName", config.fields.app_name.as_str()),
            ("dataId", key.data_id.as_str()),
            ("desc", config.fields.desc.as_str()),
            ("group", key.group.as_str()),
            ("type", config.kind()),
        ] {
            if value.is_empty() {
                continue;
            }
            out.push_str(if first { "- " } else { "  " });
            first = false;
            out.push_str(name);
            out.push_str(": ");
            out.push_str(&Value::from(value).to_string());
            out.push('\n');
        }
    }
    out
}

fn zip_of(entries: &[(String, String)]) -> Result<Vec<u8>, String> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, content) in entries {
        zip.start_file(name.as_str(), options)
            .and_then(|()| zip.write_all(content.as_bytes()).map_err(Into::into))
            .map_err(|e| format!("writing the zip: {e}"))?;
    }
    let cursor = zip.finish().map_err(|e| format!("writing the zip: {e}"))?;
    Ok(cursor.into_inner())
}

/// One config read from a zip.
struct Item {
    group: String,
    data_id: String,
    content: String,
    kind: String,
    app_name: String,
    desc: String,
}

/// What an import could not use, and why.
type Unrecognized = Vec<Value>;

/// `POST configs?import=true&namespace=…&policy=…`: the zip (a multipart form's `file`,
/// or the body itself) published config by config.
pub(crate) async fn import(
    app: &App,
    listeners: &ConfigListeners,
    request: Request<Incoming>,
    query: &Params,
) -> Answer {
    let policy = match query.get("policy").unwrap_or("ABORT").to_ascii_uppercase().as_str() {
        "ABORT" => Policy::Abort,
        "SKIP" => Policy::Skip,
        "OVERWRITE" => Policy::Overwrite,
        other => {
            return Err(FacadeError::bad(format!(
                "policy must be ABORT, SKIP or OVERWRITE, got {other:?}"
            )))
        }
    };
    let namespace = query
        .get("namespace")
        .or(query.get("tenant"))
        .unwrap_or("")
        .trim()
        .to_owned();
    let src_user = query.get("src_user").unwrap_or("").to_owned();
    let origin = query.origin(app, Origin::of(&request));
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut limits = app.limits().for_configs();
    limits.max_body = limits.max_body.saturating_mul(16);
    let body = read_body(request, &limits).await?;
    let zip = match boundary(&content_type) {
        Some(boundary) => multipart_file(&body, &boundary).ok_or_else(|| failed(100_005, "the form has no file"))?,
        None => &body[..],
    };
    let max_content = app.limits().config_max_size;
    let (items, mut unrecognized) = read_zip(zip, max_content, limits.max_body)?;
    if items.is_empty() {
        return Err(failed(100_005, "the zip holds no config"));
    }
    let mut outcome = Imported::default();
    for (index, item) in items.iter().enumerate() {
        let key = match named(Some(&item.data_id), Some(&item.group), Some(&namespace)) {
            Ok(named) => named.key,
            Err(why) => {
                unrecognized.push(json!({"itemName": format!("{}/{}", item.group, item.data_id), "reason": why}));
                continue;
            }
        };
        let fields = ConfigFields {
            content: item.content.clone(),
            kind: known_type(&item.kind),
            desc: item.desc.clone(),
            app_name: item.app_name.clone(),
            src_user: src_user.clone(),
            ..ConfigFields::default()
        };
        let cas = (policy != Policy::Overwrite).then_some(Cas::Revision(0));
        match publish(app, listeners, &origin, key, fields, cas).await? {
            Written::Done => outcome.succeeded += 1,
            Written::CasFailed if policy == Policy::Skip => outcome.skipped.push(item),
            Written::CasFailed => {
                outcome.failed.push(item);
                outcome.skipped.extend(&items[index + 1..]);
                break;
            }
        }
    }
    Ok(outcome.answer(unrecognized))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    Abort,
    Skip,
    Overwrite,
}

#[derive(Default)]
struct Imported<'a> {
    succeeded: usize,
    failed: Vec<&'a Item>,
    skipped: Vec<&'a Item>,
}

impl Imported<'_> {
    fn answer(self, unrecognized: Unrecognized) -> http::Response<Body> {
        let names = |items: &[&Item]| -> Vec<Value> {
            items
                .iter()
                .map(|item| json!({"dataId": item.data_id, "group": item.group}))
                .collect()
        };
        let mut data = json!({
            "succCount": self.succeeded,
            "skipCount": self.skipped.len(),
            "failData": names(&self.failed),
            "skipData": names(&self.skipped),
        });
        if !unrecognized.is_empty() {
            data["unrecognizedCount"] = Value::from(unrecognized.len());
            data["unrecognizedData"] = Value::Array(unrecognized);
        }
        let body = json!({"code": 200, "message": "imported", "data": data});
        no_cache(json_answer(StatusCode::OK, Bytes::from(body.to_string())))
    }
}

/// A refusal of an import as Nacos answers one (its `ResultCodeEnum` code), with a 400.
fn failed(code: u32, message: &str) -> FacadeError {
    let body = json!({"code": code, "message": message, "data": {"succCount": 0}});
    FacadeError::bad(body.to_string())
}

/// The boundary of a `multipart/form-data` content type.
fn boundary(content_type: &str) -> Option<String> {
    let (kind, rest) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    rest.split(';').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// The bytes of the part named `file` of a multipart body.
fn multipart_file<'a>(body: &'a [u8], boundary: &str) -> Option<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut at = find(body, delimiter)? + delimiter.len();
    loop {
        let rest = &body[at..];
        if rest.starts_with(b"--") {
            return None;
        }
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&rest[..head_end]).to_ascii_lowercase();
        let content = &rest[head_end + 4..];
        let end = find(content, &[b"\r\n", delimiter].concat())?;
        if head.contains("name=\"file\"") {
            return Some(&content[..end]);
        }
        at += head_end + 4 + end + 2 + delimiter.len();
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// The configs in `zip`, and the entries it could not use. Each entry is read up to
/// `max_content` bytes, all of them up to `max_total`: a zip cannot inflate past them.
fn read_zip(zip: &[u8], max_content: usize, max_total: usize) -> Result<(Vec<Item>, Unrecognized), FacadeError> {
    let mut archive = ZipArchive::new(Cursor::new(zip)).map_err(|e| failed(100_004, &format!("not a zip: {e}")))?;
    let (mut files, mut meta, mut total) = (Vec::new(), None, 0usize);
    let mut unrecognized = Unrecognized::new();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| failed(100_004, &format!("a zip entry cannot be read: {e}")))?;
        if entry.is_dir() {
            continue;
        }
        let name = entry.name().to_owned();
        let mut bytes = Vec::new();
        let limit = max_content.min(max_total.saturating_sub(total));
        (&mut entry)
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| failed(100_004, &format!("{name}: {e}")))?;
        total += bytes.len();
        if bytes.len() > limit {
            unrecognized
                .push(json!({"itemName": name, "reason": "larger than --config-max-size or the import's limit"}));
            continue;
        }
        let Ok(text) = String::from_utf8(bytes) else {
            unrecognized.push(json!({"itemName": name, "reason": "not UTF-8"}));
            continue;
        };
        match name.as_str() {
            META | METADATA => meta = Some((name, text)),
            _ => files.push((name, text)),
        }
    }
    let items = match meta {
        Some((name, text)) if name == METADATA => items_v2(files, &text, &mut unrecognized)?,
        meta => items_v1(files, meta.map(|(_, text)| text).as_deref(), &mut unrecognized)?,
    };
    Ok((items, unrecognized))
}

/// `group/dataId` → its parts, when the name is exactly that.
fn split_name(name: &str) -> Option<(&str, &str)> {
    let (group, data_id) = name.split_once('/')?;
    (!group.is_empty() && !data_id.is_empty() && !data_id.contains('/')).then_some((group, data_id))
}

fn items_v1(
    files: Vec<(String, String)>,
    meta: Option<&str>,
    unrecognized: &mut Unrecognized,
) -> Result<Vec<Item>, FacadeError> {
    let mut apps = HashMap::new();
    for line in meta.unwrap_or("").split(['\r', '\n']).filter(|line| !line.is_empty()) {
        let parts: Vec<&str> = line.split('=').collect();
        let [name, app] = parts[..] else {
            return Err(failed(
                100_002,
                &format!("{META}: {line:?} is not group.dataId.app=appName"),
            ));
        };
        apps.insert(name.to_owned(), app.to_owned());
    }
    let mut items = Vec::new();
    for (name, content) in files {
        let Some((group, data_id)) = split_name(&name) else {
            unrecognized.push(json!({"itemName": name}));
            continue;
        };
        let app_name = apps
            .get(&format!("{group}.{}.app", tilde(data_id)))
            .cloned()
            .unwrap_or_default();
        items.push(Item {
            group: group.to_owned(),
            data_id: data_id.to_owned(),
            content,
            kind: String::new(),
            app_name,
            desc: String::new(),
        });
    }
    Ok(items)
}

fn items_v2(
    files: Vec<(String, String)>,
    meta: &str,
    unrecognized: &mut Unrecognized,
) -> Result<Vec<Item>, FacadeError> {
    let illegal = |why: &str| failed(100_002, &format!("{METADATA}: {why}"));
    let docs = YamlLoader::load_from_str(meta).map_err(|e| illegal(&e.to_string()))?;
    let listed = docs
        .first()
        .and_then(|doc| doc["metadata"].as_vec())
        .filter(|listed| !listed.is_empty())
        .ok_or_else(|| illegal("it lists no metadata"))?;
    let text = |item: &Yaml, name: &str| item[name].as_str().map(str::to_owned).unwrap_or_default();
    let mut contents: HashMap<(String, String), String> = HashMap::new();
    for (name, content) in files {
        match split_name(&name) {
            Some((group, data_id)) => {
                contents.insert((group.to_owned(), data_id.to_owned()), content);
            }
            None => unrecognized.push(json!({"itemName": name})),
        }
    }
    let mut items = Vec::new();
    for item in listed {
        let (data_id, group, kind) = (text(item, "dataId"), text(item, "group"), text(item, "type"));
        if data_id.trim().is_empty() || group.trim().is_empty() || kind.trim().is_empty() {
            return Err(illegal("every entry needs dataId, group and type"));
        }
        let Some(content) = contents.remove(&(group.clone(), data_id.clone())) else {
            unrecognized.push(
                json!({"itemName": format!("{group}/{data_id}"), "reason": "listed in the metadata, not in the zip"}),
            );
            continue;
        };
        items.push(Item {
            app_name: text(item, "appName"),
            desc: text(item, "desc"),
            group,
            data_id,
            content,
            kind,
        });
    }
    for (group, data_id) in contents.into_keys() {
        unrecognized.push(json!({"itemName": format!("{group}/{data_id}"), "reason": "not listed in the metadata"}));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_read_back_what_they_write() {
        let zip = zip_of(&[
            ("G/app.yaml".to_owned(), "a: 1".to_owned()),
            ("G/plain".to_owned(), "x".to_owned()),
            (META.to_owned(), "G.app~yaml.app=shop\r\n".to_owned()),
            ("nested/too/deep".to_owned(), "?".to_owned()),
        ])
        .expect("written");
        let (items, unrecognized) = read_zip(&zip, 1 << 20, 1 << 24).expect("read");
        assert_eq!(items.len(), 2);
        assert_eq!(
            (items[0].data_id.as_str(), items[0].app_name.as_str()),
            ("app.yaml", "shop")
        );
        assert_eq!(items[1].app_name, "");
        assert_eq!(unrecognized.len(), 1);

        let yaml =
            "metadata:\n- appName: \"shop\"\n  dataId: \"a.json\"\n  desc: \"the: desc\"\n  group: G\n  type: json\n";
        let zip = zip_of(&[
            ("G/a.json".to_owned(), "{}".to_owned()),
            (METADATA.to_owned(), yaml.to_owned()),
        ])
        .expect("written");
        let (items, unrecognized) = read_zip(&zip, 1 << 20, 1 << 24).expect("read");
        assert!(unrecognized.is_empty());
        assert_eq!((items[0].kind.as_str(), items[0].desc.as_str()), ("json", "the: desc"));
        let bad = zip_of(&[(METADATA.to_owned(), "metadata:\n- dataId: a\n".to_owned())]).expect("written");
        assert!(
            read_zip(&bad, 1 << 20, 1 << 24).is_err(),
            "an entry without group and type"
        );
        assert!(read_zip(b"not a zip", 1 << 20, 1 << 24).is_err());
    }

    #[test]
    fn a_zip_cannot_inflate_past_the_limits() {
        let zip = zip_of(&[("G/big".to_owned(), "x".repeat(10_000))]).expect("written");
        let (items, unrecognized) = read_zip(&zip, 1000, 1 << 20).expect("read");
        assert!(items.is_empty());
        assert_eq!(unrecognized.len(), 1);
    }

    #[test]
    fn the_file_of_a_multipart_form_is_found() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"policy\"\r\n\r\nSKIP\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.zip\"\r\nContent-Type: application/zip\r\n\r\nPK\x03\x04data\r\n--XyZ--\r\n";
        let boundary = boundary("multipart/form-data; boundary=\"XyZ\"").expect("a boundary");
        assert_eq!(multipart_file(body, &boundary), Some(&b"PK\x03\x04data"[..]));
        assert_eq!(super::boundary("application/zip"), None);
        assert_eq!(multipart_file(b"--XyZ--\r\n", "XyZ"), None);
    }
}
