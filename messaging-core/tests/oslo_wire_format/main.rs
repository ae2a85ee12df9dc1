//! oslo.messaging's wire-format facts (`tests/drivers/test_impl_rabbit.py`:
//! `TestRequestWireFormat`, `TestReplyWireFormat` and the envelope, reply and
//! notification rules around them), checked against `messaging_core::wire`.
//!
//! oslo's rows hand the driver a raw message dict; here the RPC client's part of that
//! dict (`method`, `args`) comes from a [`Request`], so each row's message becomes the
//! request's `args` and the expected dict gains `"method"` and `"args"`. Everything
//! else (the `_unique_id`, the flattened `_context_*` keys, no call fields on a cast,
//! the `client_timeout` the server sees) is asserted exactly as oslo states it.
//!
//! Not ported: the `gzip_compression` rows (kombu compression is a RabbitMQ driver
//! feature) and the `complex_msg` request rows (Python `datetime` arguments, which
//! have no JSON value here: the caller formats them itself).

use std::time::Duration;

use messaging_core::wire::notification::{new_message_id, python_timestamp, utc_now_timestamp};
use messaging_core::wire::request::new_id;
use messaging_core::wire::{
    ContextPacking, NotificationMessage, Reply, ReplyAddress, Request, envelope,
};
use messaging_core::{Config, Context, DriverRegistry, Error, RemoteError, RpcClient, Target};
use serde_json::{Map, Value, json};

mod bodies;
mod call_fields;
mod envelope_rules;
mod malformed_messages;
mod notifications;
mod replies;
mod request;
mod server_decoding;

/// The method of every request built from an oslo row.
const METHOD: &str = "test_method";

fn obj(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not a JSON object: {other}"),
    }
}

fn is_uuid_hex(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Encodes an inner message as a driver does and checks the outer envelope: exactly
/// `oslo.version` "2.0" and `oslo.message` holding the inner message as a JSON string.
/// Returns the decoded inner dict.
fn through_envelope(inner: &Map<String, Value>) -> Map<String, Value> {
    let body = envelope::encode(inner).unwrap();
    let outer = obj(serde_json::from_slice(&body).unwrap());
    assert_eq!(
        outer.keys().map(String::as_str).collect::<Vec<_>>(),
        ["oslo.version", "oslo.message"]
    );
    assert_eq!(outer["oslo.version"], json!("2.0"));
    let text = outer["oslo.message"]
        .as_str()
        .expect("oslo.message is a JSON string");
    obj(serde_json::from_str(text).unwrap())
}

/// Removes `_unique_id`, asserting it is there and is a uuid4 in hex.
fn take_unique_id(inner: &mut Map<String, Value>) -> String {
    let id = inner.remove("_unique_id").expect("_unique_id is present");
    let id = id.as_str().expect("_unique_id is a string").to_string();
    assert!(is_uuid_hex(&id), "{id} is not 32 lowercase hex digits");
    id
}

fn malformed<T: std::fmt::Debug>(result: messaging_core::Result<T>) -> String {
    match result {
        Err(Error::Malformed(text)) => text,
        other => panic!("expected Error::Malformed, got {other:?}"),
    }
}

/// The error of a malformed inner request, read from a map and, as drivers read it,
/// from an enveloped body and from a bare body; the three agree.
fn request_malformed(inner: Value) -> String {
    let text = malformed(Request::from_map(obj(inner.clone())));
    let enveloped = envelope::encode(&inner).unwrap();
    assert_eq!(malformed(Request::decode(&enveloped)), text);
    assert_eq!(
        malformed(Request::decode(inner.to_string().as_bytes())),
        text
    );
    text
}

/// As [`request_malformed`], for notifications.
fn notification_malformed(inner: Map<String, Value>) -> String {
    let text = malformed(NotificationMessage::from_map(inner.clone()));
    assert_eq!(
        malformed(NotificationMessage::decode(
            &envelope::encode(&inner).unwrap()
        )),
        text
    );
    assert_eq!(
        malformed(NotificationMessage::decode(
            &envelope::encode_bare(&inner).unwrap()
        )),
        text
    );
    text
}

const MSG_ID: &str = "0123456789abcdef0123456789abcdef";

fn notification(context: Context) -> NotificationMessage {
    NotificationMessage {
        message_id: "99863dda-97f0-443a-a0c1-6ed317b7fd45".into(),
        publisher_id: "test.localhost".into(),
        event_type: "test.notify".into(),
        priority: "INFO".into(),
        payload: json!({"foo": "bar"}),
        timestamp: "2014-03-03 18:21:04.369234".into(),
        unique_id: Some(MSG_ID.into()),
        context,
    }
}
