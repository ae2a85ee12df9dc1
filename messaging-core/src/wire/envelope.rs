//! The oslo 2.0 envelope: `{"oslo.version": "2.0", "oslo.message": "<inner JSON>"}`.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// The envelope key holding the version.
pub const VERSION_KEY: &str = "oslo.version";
/// The envelope key holding the inner message as a JSON string.
pub const MESSAGE_KEY: &str = "oslo.message";
/// The envelope version this library writes and accepts (major 2, minor 0).
pub const ENVELOPE_VERSION: &str = "2.0";

/// Wraps an inner message (a map, or a wire view such as
/// [`Request::wire`](super::Request::wire)) in the 2.0 envelope and encodes it as JSON bytes.
pub fn encode<T: Serialize + ?Sized>(inner: &T) -> Result<Vec<u8>> {
    let mut inner_text = Vec::with_capacity(512);
    serde_json::to_writer(&mut inner_text, inner)?;
    // serde_json writes valid UTF-8; the check is cheap next to the escaping below.
    let inner_text = std::str::from_utf8(&inner_text).map_err(|e| Error::Serialization(e.to_string()))?;
    let mut out = Vec::with_capacity(inner_text.len() + inner_text.len() / 4 + 48);
    out.extend_from_slice(br#"{"oslo.version": "2.0", "oslo.message": "#);
    serde_json::to_writer(&mut out, inner_text)?;
    out.push(b'}');
    Ok(out)
}

/// Encodes an inner message without an envelope (the `messaging` 1.0 format).
pub fn encode_bare<T: Serialize + ?Sized>(inner: &T) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(inner)?)
}

/// Decodes a message body: unwraps an envelope (checking its version) or accepts an
/// un-enveloped (1.0) JSON object as it is.
pub fn decode(body: &[u8]) -> Result<Map<String, Value>> {
    let starts_as_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !starts_as_object {
        // Slow path, only to name what the body is.
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Error::Malformed(format!("body is not valid JSON: {e}")))?;
        return unwrap(value);
    }
    match serde_json::from_slice::<Outer>(body) {
        Ok(Outer::Bare(map)) => Ok(map),
        Ok(Outer::Envelope { version, message }) => open(version, message),
        Err(e) => Err(Error::Malformed(format!("body is not valid JSON: {e}"))),
    }
}

/// Collects the fields of an inner message as they are parsed, without an
/// intermediate map.
pub(crate) trait FieldSink: Default {
    /// Takes one field; an error stops parsing.
    fn field(&mut self, key: &str, value: Value) -> Result<()>;
}

/// A map key, borrowed from the input when it has no escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// An inner message read from a body: typed when it came in an envelope, or the
/// un-enveloped map.
pub(crate) enum Inner<T> {
    Typed(T),
    Map(Map<String, Value>),
}

/// Decodes a body straight into a [`FieldSink`] when it is enveloped.
pub(crate) fn decode_inner<T: FieldSink>(body: &[u8]) -> Result<Inner<T>> {
    let starts_as_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !starts_as_object {
        return decode(body).map(Inner::Map);
    }
    match serde_json::from_slice::<Outer>(body) {
        Ok(Outer::Bare(map)) => Ok(Inner::Map(map)),
        Ok(Outer::Envelope { version, message }) => {
            check_version(&version)?;
            let Value::String(inner) = message else {
                return Err(Error::Malformed(format!("envelope field {MESSAGE_KEY:?} must be a string")));
            };
            let mut sink = SinkSeed::<T> { fields: T::default(), error: None };
            let parsed = serde_json::Deserializer::from_str(&inner).deserialize_map(&mut sink);
            if let Some(e) = sink.error {
                return Err(e);
            }
            match parsed {
                Ok(()) => Ok(Inner::Typed(sink.fields)),
                // Not an object, or bad JSON: let the generic path name the problem.
                Err(_) => open(Value::String(ENVELOPE_VERSION.into()), Value::String(inner)).map(Inner::Map),
            }
        }
        Err(e) => Err(Error::Malformed(format!("body is not valid JSON: {e}"))),
    }
}

struct SinkSeed<T> {
    fields: T,
    error: Option<Error>,
}

impl<'de, T: FieldSink> Visitor<'de> for &mut SinkSeed<T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> std::result::Result<(), A::Error> {
        while let Some(Key(key)) = access.next_key::<Key<'de>>()? {
            let value = access.next_value::<Value>()?;
            if let Err(e) = self.fields.field(&key, value) {
                self.error = Some(e);
                return Err(serde::de::Error::custom("field rejected"));
            }
        }
        Ok(())
    }
}

/// The outer object of a body, read in one pass: the two envelope fields, or every
/// field of an un-enveloped message.
enum Outer {
    Envelope { version: Value, message: Value },
    Bare(Map<String, Value>),
}

impl<'de> Deserialize<'de> for Outer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_map(OuterVisitor)
    }
}

struct OuterVisitor;

impl<'de> Visitor<'de> for OuterVisitor {
    type Value = Outer;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> std::result::Result<Outer, A::Error> {
        let (mut version, mut message) = (None, None);
        let mut rest = Map::new();
        while let Some(Key(key)) = access.next_key::<Key<'de>>()? {
            match &*key {
                VERSION_KEY => version = Some(access.next_value::<Value>()?),
                MESSAGE_KEY => message = Some(access.next_value::<Value>()?),
                _ => {
                    rest.insert(key.into_owned(), access.next_value::<Value>()?);
                }
            }
        }
        Ok(match (version, message) {
            (Some(version), Some(message)) => Outer::Envelope { version, message },
            (version, message) => {
                if let Some(v) = version {
                    rest.insert(VERSION_KEY.into(), v);
                }
                if let Some(m) = message {
                    rest.insert(MESSAGE_KEY.into(), m);
                }
                Outer::Bare(rest)
            }
        })
    }
}

/// Checks the version and parses the inner message.
fn open(version: Value, message: Value) -> Result<Map<String, Value>> {
    check_version(&version)?;
    let Value::String(inner) = message else {
        return Err(Error::Malformed(format!("envelope field {MESSAGE_KEY:?} must be a string")));
    };
    match serde_json::from_str::<Value>(&inner) {
        Ok(Value::Object(inner)) => Ok(inner),
        Ok(other) => Err(Error::Malformed(format!(
            "envelope field {MESSAGE_KEY:?} must hold a JSON object, got {}",
            kind_of(&other)
        ))),
        Err(e) => Err(Error::Malformed(format!(
            "envelope field {MESSAGE_KEY:?} is not valid JSON: {e}"
        ))),
    }
}

/// Unwraps an already parsed body; see [`decode`].
pub fn unwrap(value: Value) -> Result<Map<String, Value>> {
    let Value::Object(mut map) = value else {
        return Err(Error::Malformed(format!(
            "body must be a JSON object, got {}",
            kind_of(&value)
        )));
    };
    if !(map.contains_key(VERSION_KEY) && map.contains_key(MESSAGE_KEY)) {
        return Ok(map);
    }
    let version = map.remove(VERSION_KEY).unwrap_or(Value::Null);
    let message = map.remove(MESSAGE_KEY).unwrap_or(Value::Null);
    open(version, message)
}

/// oslo accepts an envelope whose version is compatible with 2.0: major 2, minor 0.
fn check_version(version: &Value) -> Result<()> {
    let text = version.as_str().ok_or_else(|| {
        Error::Malformed(format!("envelope field {VERSION_KEY:?} must be a string"))
    })?;
    if text == ENVELOPE_VERSION {
        return Ok(());
    }
    let supported: crate::Version = ENVELOPE_VERSION.parse()?;
    match text.parse::<crate::Version>() {
        Ok(v) if supported.is_compatible_with(&v) => Ok(()),
        _ => Err(Error::Malformed(format!(
            "unsupported envelope version {text:?}: this library reads {ENVELOPE_VERSION}"
        ))),
    }
}

pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wraps_the_inner_message_as_a_string() {
        let inner = json!({"method": "add", "args": {"a": 1}});
        let body = encode(inner.as_object().unwrap()).unwrap();
        let outer: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(outer["oslo.version"], "2.0");
        let text = outer["oslo.message"].as_str().unwrap();
        assert_eq!(serde_json::from_str::<Value>(text).unwrap(), inner);
        assert_eq!(decode(&body).unwrap(), *inner.as_object().unwrap());
    }

    #[test]
    fn accepts_unenveloped_messages() {
        let body = br#"{"method": "ping", "args": {}}"#;
        assert_eq!(decode(body).unwrap()["method"], "ping");
    }

    #[test]
    fn rejects_other_envelope_versions() {
        for v in ["1.0", "3.0", "2.1", "x"] {
            let body = json!({"oslo.version": v, "oslo.message": "{}"}).to_string();
            let err = decode(body.as_bytes()).unwrap_err().to_string();
            assert!(err.contains("unsupported envelope version"), "{err}");
        }
        let ok = json!({"oslo.version": "2.0", "oslo.message": "{}"}).to_string();
        assert!(decode(ok.as_bytes()).is_ok());
    }

    #[test]
    fn malformed_bodies_name_the_bad_part() {
        let cases: [(&[u8], &str); 5] = [
            (b"not json", "not valid JSON"),
            (b"[1,2]", "must be a JSON object, got an array"),
            (br#"{"oslo.version": "2.0", "oslo.message": 5}"#, "\"oslo.message\" must be a string"),
            (br#"{"oslo.version": "2.0", "oslo.message": "{bad"}"#, "\"oslo.message\" is not valid JSON"),
            (br#"{"oslo.version": 2, "oslo.message": "{}"}"#, "\"oslo.version\" must be a string"),
        ];
        for (body, expected) in cases {
            let err = decode(body).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
    }
}
