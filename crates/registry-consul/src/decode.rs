//! What Consul's Go decoder accepts and this facade reads the same way (docs/spec.md §10.2):
//! object keys in any case and with or without underscores (`Name`, `name`,
//! `deregister_critical_service_after`), and Go durations, as text (`"10s"`, `"1m30s"`,
//! `"500ms"`) or as a number of nanoseconds.
//!
//! Two ways to read an object: [`Fields`] over a `serde_json::Value` already read (checks,
//! transactions: bodies that are rare or small), and [`Sent`] and [`Shape`], which read a
//! value straight from the JSON text into the type a field wants (a registration, the body
//! every Consul client sends at start).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON object read as Go's `encoding/json` reads a struct: a key matches a field whatever
/// its case; the snake_case aliases Consul accepts match too (underscores are ignored).
pub(crate) struct Fields<'a> {
    /// Each key with its value and its [`Folded`], in the object's order: a registration
    /// looks a dozen fields up among its keys, and walking the object's map for each took a
    /// tenth of its instructions.
    entries: Vec<(&'a str, &'a Value, Folded)>,
}

/// What tells most keys apart from a field at once: the length without separators and the
/// first significant byte, lowercased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Folded(usize, u8);

impl Folded {
    fn of(key: &str) -> Folded {
        let mut significant = key.bytes().filter(|c| *c != b'_' && *c != b'-');
        let first = significant.next().map_or(0, |c| c.to_ascii_lowercase());
        Folded(usize::from(first != 0) + significant.count(), first)
    }
}

impl<'a> Fields<'a> {
    /// The fields of `object`.
    pub(crate) fn of(object: &'a Map<String, Value>) -> Fields<'a> {
        let entries = object
            .iter()
            .map(|(key, value)| (key.as_str(), value, Folded::of(key)))
            .collect();
        Fields { entries }
    }

    /// The value of field `name` (given in PascalCase), when present and not `null`. Of two
    /// keys that fold to one, the last wins, as in Go, where a `null` leaves the field as
    /// it was.
    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        let folded = Folded::of(name);
        self.entries
            .iter()
            .rev()
            .find(|(key, value, f)| *f == folded && !value.is_null() && same_field(key, name))
            .map(|(_, value, _)| *value)
    }

    /// The first of `names` that is present.
    pub(crate) fn any(&self, names: &[&str]) -> Option<&'a Value> {
        names.iter().find_map(|name| self.get(name))
    }

    /// A text field; another type is refused, naming the field.
    pub(crate) fn text(&self, name: &str) -> Result<Option<&'a str>, String> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!("{name} must be a string, got {}", kind(other))),
        }
    }

    /// A duration field ([`go_duration`]), in ms.
    pub(crate) fn duration(&self, name: &str) -> Result<Option<u64>, String> {
        self.get(name).map(|v| duration_value(name, v)).transpose()
    }
}

/// Whether `key` names field `name` as Go matches it: whatever the ASCII case, with
/// underscores and dashes ignored. Compared as it goes, without making either.
fn same_field(key: &str, name: &str) -> bool {
    let significant = |c: &u8| *c != b'_' && *c != b'-';
    let mut key = key.bytes().filter(significant);
    let mut name = name.bytes().filter(significant);
    loop {
        match (key.next(), name.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(&b) => {}
            _ => return false,
        }
    }
}

/// `key` as a field name folds it: ASCII lowercase, underscores and dashes left out; `None`
/// when that is longer than `N` bytes (no field of the caller's is).
pub(crate) fn fold<const N: usize>(key: &str) -> Option<([u8; N], usize)> {
    let mut folded = [0u8; N];
    let mut len = 0;
    for c in key.bytes().filter(|c| *c != b'_' && *c != b'-') {
        *folded.get_mut(len)? = c.to_ascii_lowercase();
        len += 1;
    }
    Some((folded, len))
}

/// A field's value as sent: `null` (as absent, Go leaves the field as it was), of the JSON
/// type the field wants, read into `T`, or of another type, named for the error and skipped.
#[derive(Debug, Default, PartialEq)]
pub(crate) enum Sent<T> {
    #[default]
    Null,
    Is(T),
    Not(&'static str),
}

impl<T> Sent<T> {
    /// Overwrites `self` with `later` unless `later` is `null` (of two keys naming one
    /// field, the later wins, as in Go).
    pub(crate) fn set(&mut self, later: Sent<T>) {
        if !matches!(later, Sent::Null) {
            *self = later;
        }
    }

    /// `None` for null, the value, or `"<name> must be <what>, got <type>"`.
    pub(crate) fn wanted(self, name: &str, what: &str) -> Result<Option<T>, String> {
        match self {
            Sent::Null => Ok(None),
            Sent::Is(value) => Ok(Some(value)),
            Sent::Not(other) => Err(format!("{name} must be {what}, got {other}")),
        }
    }
}

/// How a `T` is read from the one JSON type it is sent as: a string, an array or an object.
/// The others default to "not this type" and skip the value.
pub(crate) trait Shape<'de>: Sized {
    fn from_str(_text: &str) -> Option<Self> {
        None
    }
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Self>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn from_map<A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

impl Shape<'_> for String {
    fn from_str(text: &str) -> Option<String> {
        Some(text.to_owned())
    }
}

/// An array of strings; the first element of another type makes it `Err` naming that type.
pub(crate) struct Strings(pub Result<Vec<String>, &'static str>);

impl<'de> Shape<'de> for Strings {
    fn from_seq<A: SeqAccess<'de>>(mut seq: A) -> Result<Option<Strings>, A::Error> {
        let mut strings = Ok(Vec::with_capacity(seq.size_hint().unwrap_or(0)));
        while let Some(item) = seq.next_element::<Sent<String>>()? {
            match (&mut strings, item) {
                (Ok(list), Sent::Is(text)) => list.push(text),
                (Ok(_), Sent::Null) => strings = Err("null"),
                (Ok(_), Sent::Not(other)) => strings = Err(other),
                (Err(_), _) => {}
            }
        }
        Ok(Some(Strings(strings)))
    }
}

impl<'de, T: Shape<'de>> Deserialize<'de> for Sent<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Sent<T>, D::Error> {
        deserializer.deserialize_any(SentVisitor(PhantomData))
    }
}

struct SentVisitor<T>(PhantomData<T>);

impl<'de, T: Shape<'de>> Visitor<'de> for SentVisitor<T> {
    type Value = Sent<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Sent<T>, E> {
        Ok(Sent::Null)
    }
    fn visit_none<E>(self) -> Result<Sent<T>, E> {
        Ok(Sent::Null)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Sent<T>, E> {
        Ok(Sent::Not("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Sent<T>, E> {
        Ok(Sent::Not("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Sent<T>, E> {
        Ok(Sent::Not("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Sent<T>, E> {
        Ok(Sent::Not("a number"))
    }
    fn visit_str<E>(self, text: &str) -> Result<Sent<T>, E> {
        Ok(T::from_str(text).map_or(Sent::Not("a string"), Sent::Is))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Sent<T>, A::Error> {
        Ok(T::from_seq(seq)?.map_or(Sent::Not("an array"), Sent::Is))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Sent<T>, A::Error> {
        Ok(T::from_map(map)?.map_or(Sent::Not("an object"), Sent::Is))
    }
}

/// What JSON type a value is, for an error.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A duration as Consul's JSON takes one: a Go duration string, or a number of
/// nanoseconds. In ms, rounded up (a positive duration never becomes 0).
fn duration_value(name: &str, value: &Value) -> Result<u64, String> {
    match value {
        Value::String(text) => go_duration(text).map_err(|e| format!("{name}: {e}")),
        Value::Number(n) => match n.as_u64() {
            Some(nanos) => Ok(nanos.div_ceil(1_000_000)),
            None => Err(format!("{name}: time: invalid duration {n}")),
        },
        other => Err(format!("{name} must be a duration, got {}", kind(other))),
    }
}

/// Go's `time.ParseDuration`, in ms (rounded up): `"300ms"`, `"1.5h"`, `"2h45m"`, `"0"`.
/// Units `ns`, `us` (`µs`), `ms`, `s`, `m`, `h`. A negative duration is refused (nothing
/// here takes one). The error is Go's text.
pub(crate) fn go_duration(text: &str) -> Result<u64, String> {
    let invalid = || format!("time: invalid duration \"{text}\"");
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() || rest.starts_with('-') {
        return Err(invalid());
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration \"{text}\"")),
            other => return Err(format!("time: unknown unit \"{other}\" in duration \"{text}\"")),
        };
        nanos += value * scale;
        rest = after;
    }
    // Go's limit: about 290 years.
    if nanos > 9.2e18 {
        return Err(invalid());
    }
    // Whole nanoseconds (Go truncates the fraction), then ms rounded up.
    let nanos = nanos as u64;
    Ok(nanos.div_ceil(1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_durations_read_as_go_reads_them() {
        assert_eq!(go_duration("10s"), Ok(10_000));
        assert_eq!(go_duration("1m30s"), Ok(90_000));
        assert_eq!(go_duration("500ms"), Ok(500));
        assert_eq!(go_duration("1.5h"), Ok(5_400_000));
        assert_eq!(go_duration("0"), Ok(0));
        assert_eq!(go_duration("1500us"), Ok(2));
        assert_eq!(go_duration("1ns"), Ok(1));
        for bad in ["", "10", "s", "-1s", "1x", "1..5s", ".s", "1s2"] {
            assert!(go_duration(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            go_duration("10"),
            Err("time: missing unit in duration \"10\"".to_owned())
        );
    }

    #[test]
    fn keys_match_whatever_their_case_or_underscores() {
        let object = json!({"name": "web", "DEREGISTER_critical_service_after": "1m", "TTL": 5_000_000_000u64});
        let Value::Object(object) = object else { unreachable!() };
        let fields = Fields::of(&object);
        assert_eq!(fields.text("Name"), Ok(Some("web")));
        assert_eq!(fields.duration("DeregisterCriticalServiceAfter"), Ok(Some(60_000)));
        assert_eq!(fields.duration("Ttl"), Ok(Some(5_000)));
        assert_eq!(fields.text("Missing"), Ok(None));
        assert_eq!(fields.text("Nam"), Ok(None), "a key is not a field it starts");
        // Of two keys that fold to one, the last (in key order) wins; separators anywhere.
        let object = json!({"_N-a_ME": "first", "nAmE": "second", "Id": "x", "I": "y", "tTL": "1s", "ttl": null});
        let Value::Object(object) = object else { unreachable!() };
        let fields = Fields::of(&object);
        assert_eq!(fields.text("Name"), Ok(Some("second")));
        assert_eq!(
            fields.duration("TTL"),
            Ok(Some(1_000)),
            "a null leaves the field as it was"
        );
        assert_eq!(fields.text("ID"), Ok(Some("x")));
    }
}
