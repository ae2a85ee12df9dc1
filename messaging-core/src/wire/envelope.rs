//! The oslo 2.0 envelope: `{"oslo.version": "2.0", "oslo.message": "<inner JSON>"}`.

use serde_json::{Map, Value};

use crate::{Error, Result};

/// The envelope key holding the version.
pub const VERSION_KEY: &str = "oslo.version";
/// The envelope key holding the inner message as a JSON string.
pub const MESSAGE_KEY: &str = "oslo.message";
/// The envelope version this library writes and accepts (major 2, minor 0).
pub const ENVELOPE_VERSION: &str = "2.0";

/// Wraps an inner message in the 2.0 envelope and encodes it as JSON bytes.
pub fn encode(inner: &Map<String, Value>) -> Result<Vec<u8>> {
    let inner_text = serde_json::to_string(inner)?;
    let mut out = Vec::with_capacity(inner_text.len() + inner_text.len() / 8 + 48);
    out.extend_from_slice(br#"{"oslo.version": "2.0", "oslo.message": "#);
    serde_json::to_writer(&mut out, &inner_text)?;
    out.push(b'}');
    Ok(out)
}

/// Encodes an inner message without an envelope (the `messaging` 1.0 format).
pub fn encode_bare(inner: &Map<String, Value>) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(inner)?)
}

/// Decodes a message body: unwraps an envelope (checking its version) or accepts an
/// un-enveloped (1.0) JSON object as it is.
pub fn decode(body: &[u8]) -> Result<Map<String, Value>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::Malformed(format!("body is not valid JSON: {e}")))?;
    unwrap(value)
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
    check_version(&version)?;
    let Some(Value::String(inner)) = map.remove(MESSAGE_KEY) else {
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

/// oslo accepts an envelope whose version is compatible with 2.0: major 2, minor 0.
fn check_version(version: &Value) -> Result<()> {
    let text = version.as_str().ok_or_else(|| {
        Error::Malformed(format!("envelope field {VERSION_KEY:?} must be a string"))
    })?;
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
