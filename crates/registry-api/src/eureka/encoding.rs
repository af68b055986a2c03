//! Eureka's two encodings of an answer: JSON when `Accept` names json, else XML (a key is
//! an element, `@name` an attribute, `$` the text).

use bytes::Bytes;
use http::header::ACCEPT;
use http::{HeaderMap, Response, StatusCode};
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use serde_json::Value;

use crate::answer::typed;
use crate::body::Body;

/// JSON when `Accept` names json, else XML.
pub(crate) fn answer(headers: &HeaderMap, document: &Value) -> Response<Body> {
    let wants_json = headers
        .get_all(ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains("json")));
    if wants_json {
        return typed(StatusCode::OK, Bytes::from(document.to_string()), "application/json");
    }
    typed(StatusCode::OK, Bytes::from(to_xml(document)), "application/xml")
}

/// Eureka's XML form of a JSON document: a key is an element, `@name` an attribute, `$`
/// the text, an array repeats its element. Keys that cannot be XML names are left out.
pub(crate) fn to_xml(document: &Value) -> Vec<u8> {
    let mut writer = Writer::new(Vec::with_capacity(4096));
    if let Value::Object(root) = document {
        for (name, value) in root {
            element(&mut writer, name, value);
        }
    }
    writer.into_inner()
}

fn xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn element(writer: &mut Writer<Vec<u8>>, name: &str, value: &Value) {
    if !xml_name(name) {
        return;
    }
    // Writing into a Vec cannot fail.
    match value {
        Value::Array(items) => items.iter().for_each(|item| element(writer, name, item)),
        Value::Object(object) => {
            let mut start = BytesStart::new(name);
            for (key, attribute) in object.iter().filter(|(k, _)| k.starts_with('@')) {
                let value = scalar(attribute);
                start.push_attribute((&key[1..], value.as_str()));
            }
            let _ = writer.write_event(Event::Start(start));
            if let Some(text) = object.get("$") {
                let _ = writer.write_event(Event::Text(BytesText::new(&scalar(text))));
            }
            for (key, child) in object.iter().filter(|(k, _)| !k.starts_with('@') && *k != "$") {
                element(writer, key, child);
            }
            let _ = writer.write_event(Event::End(BytesEnd::new(name)));
        }
        Value::Null => {
            let _ = writer.write_event(Event::Empty(BytesStart::new(name)));
        }
        scalar_value => {
            let _ = writer.write_event(Event::Start(BytesStart::new(name)));
            let _ = writer.write_event(Event::Text(BytesText::new(&scalar(scalar_value))));
            let _ = writer.write_event(Event::End(BytesEnd::new(name)));
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
