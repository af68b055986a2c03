//! The body of `/v1/agent/service/register`, read straight from its JSON text into the
//! fields a registration uses (docs/spec.md §10.2): keys in any case, with or without
//! underscores; unknown keys skipped unread; a value of another JSON type than its field's
//! kept as the name of that type, for Consul's error. Reading the body as a
//! `serde_json::Value` first, a map with a string per key, cost a registration a thirteenth
//! of its instructions.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

use crate::decode::{fold, Sent, Shape, Strings};

/// The fields of a registration, as sent. Checks, `Connect` and `Proxy` are rare and
/// nested: they stay JSON values, read with [`crate::decode::Fields`].
#[derive(Default)]
pub(super) struct Body {
    pub name: Sent<String>,
    pub id: Sent<String>,
    pub address: Sent<String>,
    pub kind: Sent<String>,
    pub port: Option<Value>,
    pub tags: Sent<Strings>,
    pub meta: Sent<Pairs>,
    pub connect: Option<Value>,
    pub proxy: Option<Value>,
    pub check: Option<Value>,
    pub checks: Option<Value>,
}

/// `Meta`: string values by key, or the first key whose value is not a string.
pub(super) struct Pairs(pub Result<BTreeMap<String, String>, String>);

impl<'de> Shape<'de> for Pairs {
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Option<Pairs>, A::Error> {
        let mut pairs = Ok(BTreeMap::new());
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<Sent<String>>()?;
            match (&mut pairs, value) {
                (Ok(pairs), Sent::Is(value)) => {
                    pairs.insert(key, value);
                }
                (Ok(_), _) => pairs = Err(key),
                (Err(_), _) => {}
            }
        }
        Ok(Some(Pairs(pairs)))
    }
}

/// A registration field, from a key however it is spelt.
enum Field {
    Name,
    Id,
    Address,
    Kind,
    Port,
    Tags,
    Meta,
    Connect,
    Proxy,
    Check,
    Checks,
    Other,
}

impl Field {
    fn of(key: &str) -> Field {
        // As Consul's clients spell them (Go and npm PascalCase, py-consul lower case),
        // without folding.
        match key {
            "Name" | "name" => return Field::Name,
            "ID" | "id" => return Field::Id,
            "Address" | "address" => return Field::Address,
            "Port" | "port" => return Field::Port,
            "Tags" | "tags" => return Field::Tags,
            "Meta" | "meta" => return Field::Meta,
            "Check" | "check" => return Field::Check,
            "Checks" | "checks" => return Field::Checks,
            _ => {}
        }
        let Some((folded, len)) = fold::<8>(key) else {
            return Field::Other;
        };
        match &folded[..len] {
            b"name" => Field::Name,
            b"id" => Field::Id,
            b"address" => Field::Address,
            b"kind" => Field::Kind,
            b"port" => Field::Port,
            b"tags" => Field::Tags,
            b"meta" => Field::Meta,
            b"connect" => Field::Connect,
            b"proxy" => Field::Proxy,
            b"check" => Field::Check,
            b"checks" => Field::Checks,
            _ => Field::Other,
        }
    }
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Field, D::Error> {
        struct Key;
        impl Visitor<'_> for Key {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E>(self, key: &str) -> Result<Field, E> {
                Ok(Field::of(key))
            }
        }
        deserializer.deserialize_identifier(Key)
    }
}

impl<'de> Shape<'de> for Body {
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Option<Body>, A::Error> {
        let mut body = Body::default();
        // A value, unless null: a later key of the same field overwrites it, as in Go.
        fn later<'de, A: MapAccess<'de>>(map: &mut A, slot: &mut Option<Value>) -> Result<(), A::Error> {
            if let Some(value) = map.next_value::<Option<Value>>()? {
                *slot = Some(value);
            }
            Ok(())
        }
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Name => body.name.set(map.next_value()?),
                Field::Id => body.id.set(map.next_value()?),
                Field::Address => body.address.set(map.next_value()?),
                Field::Kind => body.kind.set(map.next_value()?),
                Field::Tags => body.tags.set(map.next_value()?),
                Field::Meta => body.meta.set(map.next_value()?),
                Field::Port => later(&mut map, &mut body.port)?,
                Field::Connect => later(&mut map, &mut body.connect)?,
                Field::Proxy => later(&mut map, &mut body.proxy)?,
                Field::Check => later(&mut map, &mut body.check)?,
                Field::Checks => later(&mut map, &mut body.checks)?,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(body))
    }
}
