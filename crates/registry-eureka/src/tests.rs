//! The Eureka facade's unit tests: its XML (well-formed whatever the registry holds, and
//! read back whole for what a client may register) and its hash code.

use proptest::prelude::*;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde_json::{json, Map, Value};

use crate::encoding::{to_xml, xml_char, xml_name};
use crate::instance::{eureka_instance, from_sent, hashcode};

#[test]
fn xml_follows_eurekas_conventions() {
    let document = json!({"applications": {"versions__delta": "3", "apps__hashcode": "UP_1_",
        "application": [{"name": "DEMO", "instance": [{"instanceId": "a<b", "port": {"$": 8080, "@enabled": "true"},
        "metadata": {"zone": "eu", "9bad": "x"}}]}]}});
    let xml = String::from_utf8(to_xml(&document)).unwrap();
    // Elements in key order (clients read them by name), text escaped, `9bad` left out.
    assert_eq!(
        xml,
        "<applications><application><instance><instanceId>a&lt;b</instanceId>\
         <metadata><zone>eu</zone></metadata><port enabled=\"true\">8080</port></instance>\
         <name>DEMO</name></application><apps__hashcode>UP_1_</apps__hashcode>\
         <versions__delta>3</versions__delta></applications>"
    );
}

#[test]
fn the_hashcode_counts_statuses_in_order() {
    let up = json!({"status": "UP"});
    let down = json!({"status": "DOWN"});
    assert_eq!(hashcode(&[&up, &down, &up]), "DOWN_1_UP_2_");
    assert_eq!(hashcode(&[]), "");
}

/// The document `xml` holds, read back by Eureka's conventions: an element is a key, an
/// attribute `@name`, text `$` (or the value itself when the element has nothing else),
/// a repeated element an array. Panics when the XML is not well-formed.
fn read_back(xml: &[u8]) -> Value {
    let text = std::str::from_utf8(xml).expect("UTF-8");
    if let Some(c) = text.chars().find(|c| !xml_char(*c)) {
        panic!("U+{:04X} written raw: {text}", u32::from(c));
    }
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(false);
    // The open elements: name, children and attributes, text.
    let mut open: Vec<(String, Map<String, Value>, String)> = vec![(String::new(), Map::new(), String::new())];
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("malformed XML ({e}): {text}"))
        {
            Event::Start(start) => open.push(opened(&start)),
            Event::Empty(start) => {
                let (name, children, text) = opened(&start);
                close(&mut open, name, children, text);
            }
            Event::Text(t) => open.last_mut().unwrap().2.push_str(&t.xml_content().unwrap()),
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().unwrap() {
                    Some(c) => c.to_string(),
                    None => resolve_predefined_entity(&r.decode().unwrap())
                        .expect("a known entity")
                        .to_owned(),
                };
                open.last_mut().unwrap().2.push_str(&c);
            }
            Event::End(_) => {
                let (name, children, text) = open.pop().unwrap();
                close(&mut open, name, children, text);
            }
            Event::Eof => break,
            other => panic!("unexpected {other:?} in {text}"),
        }
    }
    assert_eq!(open.len(), 1, "unclosed elements in {text}");
    Value::Object(open.pop().unwrap().1)
}

fn opened(start: &BytesStart) -> (String, Map<String, Value>, String) {
    let name = String::from_utf8(start.name().as_ref().to_vec()).unwrap();
    let mut children = Map::new();
    for attribute in start.attributes() {
        let attribute = attribute.expect("a well-formed attribute");
        let key = format!("@{}", String::from_utf8(attribute.key.as_ref().to_vec()).unwrap());
        let value = attribute.unescape_value().expect("an attribute value");
        assert!(
            children.insert(key, Value::String(value.into_owned())).is_none(),
            "a repeated attribute"
        );
    }
    (name, children, String::new())
}

fn close(
    open: &mut [(String, Map<String, Value>, String)],
    name: String,
    mut children: Map<String, Value>,
    text: String,
) {
    let value = if children.is_empty() {
        Value::String(text)
    } else {
        if !text.is_empty() {
            children.insert("$".to_owned(), Value::String(text));
        }
        Value::Object(children)
    };
    let parent = &mut open.last_mut().unwrap().1;
    match parent.get_mut(&name) {
        None => {
            parent.insert(name, value);
        }
        Some(Value::Array(items)) => items.push(value),
        Some(first) => *first = Value::Array(vec![first.take(), value]),
    }
}

/// What `to_xml` of `value`, an element's content, reads back as (see [`read_back`]).
fn as_read_back(value: &Value) -> Value {
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let Value::Object(object) = value else {
        return Value::String(scalar(value));
    };
    let mut out = Map::new();
    let mut text = String::new();
    for (key, child) in object {
        if let Some(name) = key.strip_prefix('@') {
            if xml_name(name) {
                out.insert(key.clone(), Value::String(scalar(child)));
            }
        } else if key == "$" {
            text = scalar(child);
        } else if xml_name(key) {
            let mut items = Vec::new();
            flatten(child, &mut items);
            match items.len() {
                0 => {}
                1 => {
                    out.insert(key.clone(), items.remove(0));
                }
                _ => {
                    out.insert(key.clone(), Value::Array(items));
                }
            }
        }
    }
    if out.is_empty() {
        return Value::String(text);
    }
    if !text.is_empty() {
        out.insert("$".to_owned(), Value::String(text));
    }
    Value::Object(out)
}

fn flatten(value: &Value, into: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| flatten(item, into)),
        other => into.push(as_read_back(other)),
    }
}

/// Keys a client might send: good names, attributes, text, and what XML cannot name.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_.-]{0,6}",
        "@[a-zA-Z_][a-zA-Z0-9_.-]{0,6}",
        Just("$".to_owned()),
        Just("@class".to_owned()),
        ".{0,6}",
        "@.{0,6}",
        r#"@a="1"><injected>pwned</injected><x y"#,
    ]
}

/// Text with markup, line ends, control characters and anything else.
fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            any::<char>(),
            proptest::sample::select(vec![
                '<', '>', '&', '"', '\'', '\t', '\n', '\r', '\u{0}', '\u{1b}', '\u{FFFE}'
            ]),
            Just('a'),
        ],
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        text().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(key(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any instance a client sends is refused, or its XML parses back to what the JSON
    /// answer holds; the XML of anything at all is well-formed.
    #[test]
    fn an_instance_is_refused_or_read_back_whole_as_xml(
        extra in proptest::collection::btree_map(key(), json_value(), 0..5),
        metadata in proptest::collection::btree_map(key(), json_value(), 0..5),
        id in text(),
    ) {
        let mut sent = json!({"instanceId": id, "hostName": "h1", "ipAddr": "10.0.0.1",
            "port": {"$": 8080, "@enabled": "true"}, "metadata": metadata}).as_object().unwrap().clone();
        sent.extend(extra);
        // Whatever is sent, its XML is well-formed.
        read_back(&to_xml(&json!({"instance": sent.clone()})));
        if let Ok(instance) = from_sent(&sent) {
            let document = json!({"instance": eureka_instance(&instance, "APP", 5)});
            let read = read_back(&to_xml(&document));
            prop_assert_eq!(&read, &as_read_back(&document));
            // What the client sent is all there (read as a whole: `$` alone would read back
            // as the element's text, not as a key).
            let expected = as_read_back(&Value::Object(sent.clone()));
            for key in sent.keys().filter(|k| !["app", "status", "overriddenstatus"].contains(&k.as_str())) {
                prop_assert_eq!(expected.get(key), read["instance"].get(key), "{}", key);
            }
        }
    }
}

#[test]
fn an_injected_attribute_name_is_refused_and_never_written() {
    let sent = json!({"instanceId": "i", "ipAddr": "10.0.0.1", "port": 80,
        "@a=\"1\"><injected>pwned</injected><x y": "v"});
    let error = from_sent(sent.as_object().unwrap()).unwrap_err();
    assert!(error.message().contains("attribute name"), "{error:?}");
    let xml = String::from_utf8(to_xml(&json!({"instance": sent}))).unwrap();
    assert!(!xml.contains("injected"), "{xml}");
    read_back(xml.as_bytes());
}
