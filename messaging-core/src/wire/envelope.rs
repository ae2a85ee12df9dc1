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
    let mut out = Vec::with_capacity(inner_text.len() + inner_text.len() / 4 + 48);
    out.extend_from_slice(br#"{"oslo.version": "2.0", "oslo.message": ""#);
    escape_compact_json(&mut out, &inner_text);
    out.extend_from_slice(b"\"}");
    Ok(out)
}

/// Escapes compact JSON text as the contents of a JSON string. serde_json's compact
/// output has no raw control characters (they are escaped inside strings and there is
/// no whitespace outside them), so only `"` and `\` need escaping.
fn escape_compact_json(out: &mut Vec<u8>, text: &[u8]) {
    let mut start = 0;
    for i in memchr::memchr2_iter(b'"', b'\\', text) {
        out.extend_from_slice(&text[start..i]);
        out.push(b'\\');
        out.push(text[i]);
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
}

/// How this library and Python (`json.dumps` of oslo's envelope dict) both begin an
/// enveloped body.
const ENVELOPE_PREFIX: &[u8] = br#"{"oslo.version": "2.0", "oslo.message": ""#;

/// The inner text of a body that is exactly `ENVELOPE_PREFIX` + string contents +
/// `"}`, without running the general parser; `None` for anything else.
fn fast_envelope(body: &[u8]) -> Option<String> {
    unescape_contents(body.strip_prefix(ENVELOPE_PREFIX)?.strip_suffix(b"\"}")?)
}

/// Unescapes the contents of a JSON string quickly when it has only the short
/// escapes; `None` when it needs the full parser (`\u` escapes, an unescaped quote,
/// invalid UTF-8).
fn unescape_contents(body: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(body.len());
    let mut start = 0;
    for i in memchr::memchr2_iter(b'\\', b'"', body) {
        if i < start {
            continue; // the character escaped by the previous backslash
        }
        if body[i] == b'"' {
            return None;
        }
        out.extend_from_slice(&body[start..i]);
        let replacement = match body.get(i + 1)? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'n' => b'\n',
            b't' => b'\t',
            b'r' => b'\r',
            b'b' => 0x08,
            b'f' => 0x0c,
            _ => return None,
        };
        out.push(replacement);
        start = i + 2;
    }
    out.extend_from_slice(&body[start..]);
    String::from_utf8(out).ok()
}

/// The text of a JSON string literal.
fn string_literal(raw: &serde_json::value::RawValue) -> Option<String> {
    let text = raw.get();
    if !text.starts_with('"') {
        return None;
    }
    let contents = text.as_bytes().get(1..text.len().saturating_sub(1))?;
    unescape_contents(contents).or_else(|| serde_json::from_str::<String>(text).ok())
}

/// Encodes an inner message without an envelope (the `messaging` 1.0 format).
pub fn encode_bare<T: Serialize + ?Sized>(inner: &T) -> Result<Vec<u8>> {
    // Most messages fit: growing from serde_json's default costs reallocations.
    let mut out = Vec::with_capacity(512);
    serde_json::to_writer(&mut out, inner)?;
    Ok(out)
}

/// Decodes a message body: unwraps an envelope (checking its version) or accepts an
/// un-enveloped (1.0) JSON object as it is.
pub fn decode(body: &[u8]) -> Result<Map<String, Value>> {
    match open_body(body)? {
        Opened::Bare(map) => Ok(map),
        Opened::Inner(text) => parse_object(&text),
    }
}

/// A body with its envelope (if any) removed: the un-enveloped object, or the inner
/// message text of a checked 2.0 envelope.
enum Opened {
    Bare(Map<String, Value>),
    Inner(String),
}

fn open_body(body: &[u8]) -> Result<Opened> {
    match fast_envelope(body) {
        Some(inner) => Ok(Opened::Inner(inner)),
        None => open_unusual(body),
    }
}

/// [`open_body`] for what is not an envelope in the form Python writes.
fn open_unusual(body: &[u8]) -> Result<Opened> {
    let starts_as_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    if !starts_as_object {
        // Slow path, only to name what the body is.
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Error::Malformed(format!("body is not valid JSON: {e}")))?;
        return Err(Error::Malformed(format!(
            "body must be a JSON object, got {}",
            kind_of(&value)
        )));
    }
    match serde_json::from_slice::<Outer>(body) {
        Ok(Outer::Bare(map)) => Ok(Opened::Bare(map)),
        Ok(Outer::Envelope { version, message }) => {
            check_version(&version)?;
            string_literal(message)
                .map(Opened::Inner)
                .ok_or_else(not_a_string)
        }
        Err(e) => Err(Error::Malformed(format!("body is not valid JSON: {e}"))),
    }
}

fn not_a_string() -> Error {
    Error::Malformed(format!("envelope field {MESSAGE_KEY:?} must be a string"))
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

/// Decodes a body straight into a [`FieldSink`]: an envelope's inner message, or a
/// bare message (as the ZeroMQ driver sends). Anything unusual (an envelope written
/// another way, bad JSON) takes the general path, which names the problem.
pub(crate) fn decode_inner<T: FieldSink>(body: &[u8]) -> Result<Inner<T>> {
    if let Some(inner) = fast_envelope(body) {
        return parse_inner(&inner);
    }
    if let Ok(text) = std::str::from_utf8(body)
        && let Some(fields) = parse_fields::<T>(text, true)?
    {
        return Ok(Inner::Typed(fields));
    }
    match open_unusual(body)? {
        Opened::Bare(map) => Ok(Inner::Map(map)),
        Opened::Inner(text) => parse_inner(&text),
    }
}

/// Parses inner message text into a [`FieldSink`].
fn parse_inner<T: FieldSink>(inner: &str) -> Result<Inner<T>> {
    match parse_fields(inner, false)? {
        Some(fields) => Ok(Inner::Typed(fields)),
        // Not an object, or bad JSON: let the generic path name the problem.
        None => parse_object(inner).map(Inner::Map),
    }
}

/// The fields of the JSON object `text`; `None` when it is not one (or, with
/// `bare_only`, when it is an envelope or the sink rejected a field), an error when
/// the sink rejected a field of an inner message.
fn parse_fields<T: FieldSink>(text: &str, bare_only: bool) -> Result<Option<T>> {
    let mut sink = SinkSeed::<T> {
        fields: T::default(),
        error: None,
        bare_only,
    };
    let parsed = serde_json::Deserializer::from_str(text).deserialize_map(&mut sink);
    match sink.error {
        // The general path decides, as it may yet find an envelope.
        Some(_) if bare_only => return Ok(None),
        Some(e) => return Err(e),
        None => {}
    }
    Ok(parsed.ok().map(|()| sink.fields))
}

struct SinkSeed<T> {
    fields: T,
    error: Option<Error>,
    /// Stop at an envelope's keys: the caller opens envelopes another way.
    bare_only: bool,
}

impl<'de, T: FieldSink> Visitor<'de> for &mut SinkSeed<T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> std::result::Result<(), A::Error> {
        while let Some(Key(key)) = access.next_key::<Key<'de>>()? {
            if self.bare_only && (key == VERSION_KEY || key == MESSAGE_KEY) {
                return Err(serde::de::Error::custom("an envelope"));
            }
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
enum Outer<'de> {
    Envelope {
        version: Value,
        message: &'de serde_json::value::RawValue,
    },
    Bare(Map<String, Value>),
}

impl<'de> Deserialize<'de> for Outer<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_map(OuterVisitor)
    }
}

struct OuterVisitor;

impl<'de> Visitor<'de> for OuterVisitor {
    type Value = Outer<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut access: A,
    ) -> std::result::Result<Outer<'de>, A::Error> {
        let (mut version, mut message) = (None, None);
        let mut rest = Map::new();
        while let Some(Key(key)) = access.next_key::<Key<'de>>()? {
            match &*key {
                VERSION_KEY => version = Some(access.next_value::<Value>()?),
                MESSAGE_KEY => {
                    message = Some(access.next_value::<&'de serde_json::value::RawValue>()?)
                }
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
                    let m = serde_json::from_str(m.get()).map_err(serde::de::Error::custom)?;
                    rest.insert(MESSAGE_KEY.into(), m);
                }
                Outer::Bare(rest)
            }
        })
    }
}

/// Parses inner message text, which must be a JSON object.
fn parse_object(inner: &str) -> Result<Map<String, Value>> {
    match serde_json::from_str::<Value>(inner) {
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
    check_version(&map.remove(VERSION_KEY).unwrap_or(Value::Null))?;
    match map.remove(MESSAGE_KEY) {
        Some(Value::String(text)) => parse_object(&text),
        _ => Err(not_a_string()),
    }
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

/// What kind of JSON value this is, for error messages ("a string", "an object").
pub fn kind_of(value: &Value) -> &'static str {
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
    fn escapes_round_trip() {
        let tricky = "quote \" backslash \\ slash / newline \n tab \t ctrl \u{1} é 😀 \\\"";
        let inner = json!({"s": tricky, "nested": {"k\"ey": [tricky]}});
        let body = encode(inner.as_object().unwrap()).unwrap();
        assert_eq!(decode(&body).unwrap(), *inner.as_object().unwrap());
        // The envelope is JSON any parser reads the same way.
        let outer: Value = serde_json::from_slice(&body).unwrap();
        let text = outer["oslo.message"].as_str().unwrap();
        assert_eq!(serde_json::from_str::<Value>(text).unwrap(), inner);
    }

    #[test]
    fn extra_outer_fields_take_the_general_path() {
        let body = br#"{"oslo.version": "2.0", "oslo.message": "{\"a\": 1}", "x": "y"}"#;
        assert_eq!(decode(body).unwrap()["a"], 1);
        let body = br#"{"oslo.version": "2.0", "oslo.message": "{\"a\": \"b\"}\"}"#;
        assert!(decode(body).is_err(), "an unbalanced quote is not accepted");
    }

    #[test]
    fn reads_python_ascii_escapes() {
        // Python's json.dumps escapes non-ASCII as \uXXXX (with surrogate pairs).
        let body =
            br#"{"oslo.version": "2.0", "oslo.message": "{\"s\": \"\\u00e9 \\ud83d\\ude00\"}"}"#;
        assert_eq!(decode(body).unwrap()["s"], "é 😀");
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
            (
                br#"{"oslo.version": "2.0", "oslo.message": 5}"#,
                "\"oslo.message\" must be a string",
            ),
            (
                br#"{"oslo.version": "2.0", "oslo.message": "{bad"}"#,
                "\"oslo.message\" is not valid JSON",
            ),
            (
                br#"{"oslo.version": 2, "oslo.message": "{}"}"#,
                "\"oslo.version\" must be a string",
            ),
        ];
        for (body, expected) in cases {
            let err = decode(body).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
    }
}
