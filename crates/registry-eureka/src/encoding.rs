//! Eureka's two encodings of an answer: JSON when `Accept` names json, else XML (a key is
//! an element, `@name` an attribute, `$` the text).
//!
//! The XML is written only through checked names and escaped values, whatever the
//! registry holds: a name that cannot be an XML name is left out, a character XML cannot
//! carry is written as U+FFFD. What a Eureka client registers is checked by
//! [`representable`] first, so that what it sent comes back whole.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::ACCEPT;
use http::{HeaderMap, Response, StatusCode};
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::QName;
use quick_xml::Writer;
use serde_json::Value;

use registry_api::answer::typed;
use registry_api::Body;

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

/// Whether `name` can be an element or attribute name: a letter or `_`, then letters,
/// digits, `_`, `-` and `.` (no `:`, which namespace-aware parsers read as a prefix).
pub(crate) fn xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Whether XML 1.0 can carry `c` at all (escaped or not).
pub(crate) fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Checks that a document a client sends can be written as Eureka's XML and read back the
/// same: every key an XML name (`@name` for an attribute, `$` for the text, both holding a
/// scalar), no array directly in an array, only characters XML can carry. Answers what
/// cannot, by its path.
pub(crate) fn representable(value: &Value, path: &str) -> Result<(), String> {
    match value {
        Value::String(s) => match s.chars().find(|c| !xml_char(*c)) {
            Some(c) => Err(format!(
                "{path} holds the character U+{:04X}, which XML cannot carry",
                u32::from(c)
            )),
            None => Ok(()),
        },
        Value::Array(items) => items.iter().try_for_each(|item| match item {
            Value::Array(_) => Err(format!("{path} holds an array in an array, which XML cannot carry")),
            item => representable(item, path),
        }),
        Value::Object(object) => object.iter().try_for_each(|(key, child)| {
            let inner = format!("{path}.{key}");
            let attribute = key.strip_prefix('@');
            if attribute.is_some() || key == "$" {
                if attribute.is_some_and(|name| !xml_name(name)) {
                    return Err(format!("{inner}: {key:?} cannot be an XML attribute name"));
                }
                if matches!(child, Value::Array(_) | Value::Object(_)) {
                    return Err(format!("{inner} must be a string, a number or a boolean"));
                }
                return representable(child, &inner);
            }
            if !xml_name(key) {
                return Err(format!(
                    "{inner}: {key:?} cannot be an XML element name (Eureka's XML clients read it): use a letter \
                     or '_', then letters, digits, '_', '-' or '.'"
                ));
            }
            representable(child, &inner)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
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
            for (key, attribute) in object.iter() {
                let Some(attribute_name) = key.strip_prefix('@').filter(|n| xml_name(n)) else {
                    continue;
                };
                start.push_attribute(Attribute {
                    key: QName(attribute_name.as_bytes()),
                    value: Cow::Owned(escaped(&scalar(attribute)).into_bytes()),
                });
            }
            let _ = writer.write_event(Event::Start(start));
            if let Some(text) = object.get("$") {
                let _ = writer.write_event(Event::Text(BytesText::from_escaped(escaped(&scalar(text)))));
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
            let _ = writer.write_event(Event::Text(BytesText::from_escaped(escaped(&scalar(scalar_value)))));
            let _ = writer.write_event(Event::End(BytesEnd::new(name)));
        }
    }
}

/// `text` escaped for element text and attribute values alike: markup characters as
/// entities, tab and line ends as character references (so that no parser normalises
/// them away), characters XML cannot carry as U+FFFD.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
