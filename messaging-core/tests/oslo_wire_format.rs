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

// ---------------------------------------------------------------------------------
// TestRequestWireFormat: what a cast puts on the wire.
// ---------------------------------------------------------------------------------

fn check_request_row(msg: Value, ctxt: Value, expected: Value) {
    let request = Request::new(METHOD, obj(msg), Context::from_value(ctxt).unwrap());
    let mut inner = through_envelope(&request.to_map(ContextPacking::Flattened));
    let unique_id = take_unique_id(&mut inner);
    assert_eq!(Some(unique_id), request.unique_id);
    assert_eq!(Value::Object(inner), expected);
}

macro_rules! request_rows {
    ($($name:ident: msg $msg:tt, ctxt $ctxt:tt => $expected:tt;)*) => {
        $(
            #[test]
            fn $name() {
                check_request_row(json!($msg), json!($ctxt), json!($expected));
            }
        )*
    };
}

// The target (topic, server, fanout) only chooses the route; the inner dict is the same.
request_rows! {
    request_empty_msg_empty_ctxt_topic_target_without_compression:
        msg {}, ctxt {} => {"method": METHOD, "args": {}};
    request_empty_msg_empty_ctxt_server_target_without_compression:
        msg {}, ctxt {} => {"method": METHOD, "args": {}};
    request_empty_msg_empty_ctxt_fanout_target_without_compression:
        msg {}, ctxt {} => {"method": METHOD, "args": {}};
    request_empty_msg_user_project_ctxt_topic_target_without_compression:
        msg {}, ctxt {"user": "mark", "project": "snarkybunch"} =>
        {"method": METHOD, "args": {}, "_context_user": "mark", "_context_project": "snarkybunch"};
    request_empty_msg_user_project_ctxt_server_target_without_compression:
        msg {}, ctxt {"user": "mark", "project": "snarkybunch"} =>
        {"method": METHOD, "args": {}, "_context_user": "mark", "_context_project": "snarkybunch"};
    request_empty_msg_user_project_ctxt_fanout_target_without_compression:
        msg {}, ctxt {"user": "mark", "project": "snarkybunch"} =>
        {"method": METHOD, "args": {}, "_context_user": "mark", "_context_project": "snarkybunch"};
    request_primitive_msg_empty_ctxt_topic_target_without_compression:
        msg {"foo": "bar"}, ctxt {} => {"method": METHOD, "args": {"foo": "bar"}};
    request_primitive_msg_empty_ctxt_server_target_without_compression:
        msg {"foo": "bar"}, ctxt {} => {"method": METHOD, "args": {"foo": "bar"}};
    request_primitive_msg_empty_ctxt_fanout_target_without_compression:
        msg {"foo": "bar"}, ctxt {} => {"method": METHOD, "args": {"foo": "bar"}};
    request_primitive_msg_user_project_ctxt_topic_target_without_compression:
        msg {"foo": "bar"}, ctxt {"user": "mark", "project": "snarkybunch"} =>
        {"method": METHOD, "args": {"foo": "bar"}, "_context_user": "mark", "_context_project": "snarkybunch"};
    request_primitive_msg_user_project_ctxt_server_target_without_compression:
        msg {"foo": "bar"}, ctxt {"user": "mark", "project": "snarkybunch"} =>
        {"method": METHOD, "args": {"foo": "bar"}, "_context_user": "mark", "_context_project": "snarkybunch"};
    request_primitive_msg_user_project_ctxt_fanout_target_without_compression:
        msg {"foo": "bar"}, ctxt {"user": "mark", "project": "snarkybunch"} =>
        {"method": METHOD, "args": {"foo": "bar"}, "_context_user": "mark", "_context_project": "snarkybunch"};
}

#[test]
fn request_namespace_and_version_are_plain_keys_sent_only_when_set() {
    let mut request = Request::new(METHOD, Map::new(), Context::new());
    let mut inner = request.to_map(ContextPacking::Flattened);
    take_unique_id(&mut inner);
    assert_eq!(Value::Object(inner), json!({"method": METHOD, "args": {}}));

    request.namespace = Some("testns".into());
    request.version = Some("1.1".into());
    let mut inner = through_envelope(&request.to_map(ContextPacking::Flattened));
    take_unique_id(&mut inner);
    assert_eq!(
        Value::Object(inner),
        json!({"method": METHOD, "args": {}, "namespace": "testns", "version": "1.1"})
    );
}

#[test]
fn request_unique_ids_differ_per_request() {
    let a = Request::new(METHOD, Map::new(), Context::new());
    let b = Request::new(METHOD, Map::new(), Context::new());
    assert!(is_uuid_hex(a.unique_id.as_deref().unwrap()));
    assert_ne!(a.unique_id, b.unique_id);
}

// ---------------------------------------------------------------------------------
// TestReplyWireFormat: how the server decodes a call request.
// ---------------------------------------------------------------------------------

fn check_reply_row(msg: Value, ctxt_keys: Value, expected_ctxt: Value) {
    let (msg_id, unique_id, reply_q) = (new_id(), new_id(), format!("reply_{}", new_id()));
    let mut inner = obj(json!({"method": METHOD, "args": msg.clone()}));
    inner.extend(obj(ctxt_keys));
    inner.extend(obj(json!({
        "_msg_id": msg_id, "_unique_id": unique_id, "_reply_q": reply_q, "_timeout": null
    })));
    // Published as a Python producer does: the inner dict JSON-encoded into the envelope.
    let body = json!({"oslo.version": "2.0", "oslo.message": Value::Object(inner).to_string()})
        .to_string();
    let received = Request::from_map(envelope::decode(body.as_bytes()).unwrap()).unwrap();
    // The drivers' one-pass decoder agrees with the map path.
    assert_eq!(Request::decode(body.as_bytes()).unwrap(), received);

    assert_eq!(received.method, METHOD);
    assert_eq!(Value::Object(received.args), msg);
    assert_eq!(Value::Object(received.context.0), expected_ctxt);
    assert_eq!(received.namespace, None);
    assert_eq!(received.version, None);
    assert_eq!(received.unique_id, Some(unique_id));
    assert_eq!(
        received.reply,
        Some(ReplyAddress {
            msg_id,
            reply_q,
            call_monitor_timeout: None
        })
    );
}

macro_rules! reply_rows {
    ($($name:ident: msg $msg:tt, ctxt $ctxt:tt => ctxt $expected:tt;)*) => {
        $(
            #[test]
            fn $name() {
                check_reply_row(json!($msg), json!($ctxt), json!($expected));
            }
        )*
    };
}

reply_rows! {
    reply_empty_msg_empty_ctxt_topic_target_without_compression:
        msg {}, ctxt {} => ctxt {"client_timeout": null};
    reply_empty_msg_empty_ctxt_server_target_without_compression:
        msg {}, ctxt {} => ctxt {"client_timeout": null};
    reply_empty_msg_empty_ctxt_fanout_target_without_compression:
        msg {}, ctxt {} => ctxt {"client_timeout": null};
    reply_empty_msg_user_project_ctxt_topic_target_without_compression:
        msg {}, ctxt {"_context_user": "mark", "_context_project": "snarkybunch"} =>
        ctxt {"user": "mark", "project": "snarkybunch", "client_timeout": null};
    reply_empty_msg_user_project_ctxt_server_target_without_compression:
        msg {}, ctxt {"_context_user": "mark", "_context_project": "snarkybunch"} =>
        ctxt {"user": "mark", "project": "snarkybunch", "client_timeout": null};
    reply_empty_msg_user_project_ctxt_fanout_target_without_compression:
        msg {}, ctxt {"_context_user": "mark", "_context_project": "snarkybunch"} =>
        ctxt {"user": "mark", "project": "snarkybunch", "client_timeout": null};
    reply_primitive_msg_empty_ctxt_topic_target_without_compression:
        msg {"foo": "bar"}, ctxt {} => ctxt {"client_timeout": null};
    reply_primitive_msg_empty_ctxt_server_target_without_compression:
        msg {"foo": "bar"}, ctxt {} => ctxt {"client_timeout": null};
    reply_primitive_msg_empty_ctxt_fanout_target_without_compression:
        msg {"foo": "bar"}, ctxt {} => ctxt {"client_timeout": null};
    reply_primitive_msg_user_project_ctxt_topic_target_without_compression:
        msg {"foo": "bar"}, ctxt {"_context_user": "mark", "_context_project": "snarkybunch"} =>
        ctxt {"user": "mark", "project": "snarkybunch", "client_timeout": null};
    reply_primitive_msg_user_project_ctxt_server_target_without_compression:
        msg {"foo": "bar"}, ctxt {"_context_user": "mark", "_context_project": "snarkybunch"} =>
        ctxt {"user": "mark", "project": "snarkybunch", "client_timeout": null};
    reply_primitive_msg_user_project_ctxt_fanout_target_without_compression:
        msg {"foo": "bar"}, ctxt {"_context_user": "mark", "_context_project": "snarkybunch"} =>
        ctxt {"user": "mark", "project": "snarkybunch", "client_timeout": null};
    // On receipt the "complex" value is already a string: nothing is decoded.
    reply_complex_msg_empty_ctxt_topic_target_without_compression:
        msg {"a": {"b": "1920-02-03T04:05:06.000007"}}, ctxt {} => ctxt {"client_timeout": null};
    reply_complex_msg_empty_ctxt_server_target_without_compression:
        msg {"a": {"b": "1920-02-03T04:05:06.000007"}}, ctxt {} => ctxt {"client_timeout": null};
    reply_complex_msg_empty_ctxt_fanout_target_without_compression:
        msg {"a": {"b": "1920-02-03T04:05:06.000007"}}, ctxt {} => ctxt {"client_timeout": null};
    reply_complex_msg_user_project_ctxt_topic_target_without_compression:
        msg {"a": {"b": "1920-02-03T04:05:06.000007"}},
        ctxt {"_context_user": "mark", "_context_project": "snarkybunch"} =>
        ctxt {"user": "mark", "project": "snarkybunch", "client_timeout": null};
    reply_complex_msg_user_project_ctxt_server_target_without_compression:
        msg {"a": {"b": "1920-02-03T04:05:06.000007"}},
        ctxt {"_context_user": "mark", "_context_project": "snarkybunch"} =>
        ctxt {"user": "mark", "project": "snarkybunch", "client_timeout": null};
    reply_complex_msg_user_project_ctxt_fanout_target_without_compression:
        msg {"a": {"b": "1920-02-03T04:05:06.000007"}},
        ctxt {"_context_user": "mark", "_context_project": "snarkybunch"} =>
        ctxt {"user": "mark", "project": "snarkybunch", "client_timeout": null};
}

#[test]
fn cast_without_call_fields_gives_null_client_timeout_and_no_reply() {
    let body = envelope::encode(&obj(
        json!({"method": METHOD, "args": {}, "_unique_id": new_id()}),
    ))
    .unwrap();
    let received = Request::from_map(envelope::decode(&body).unwrap()).unwrap();
    assert_eq!(received.reply, None);
    assert_eq!(
        Value::Object(received.context.0),
        json!({"client_timeout": null})
    );
}

#[test]
fn message_without_unique_id_is_accepted() {
    let received = Request::from_map(obj(json!({"method": METHOD}))).unwrap();
    assert_eq!(received.unique_id, None);
    assert!(received.args.is_empty());
}

// ---------------------------------------------------------------------------------
// Call fields: `_msg_id`, `_reply_q`, `_timeout`.
// ---------------------------------------------------------------------------------

fn call_request(call_monitor_timeout: Option<f64>) -> Request {
    let mut request = Request::new(METHOD, Map::new(), Context::new().with("user", "mark"));
    request.reply = Some(ReplyAddress {
        msg_id: "0123456789abcdef0123456789abcdef".into(),
        reply_q: "reply_fedcba9876543210fedcba9876543210".into(),
        call_monitor_timeout,
    });
    request
}

#[test]
fn call_fields_without_call_monitor_send_null_timeout() {
    let mut inner = through_envelope(&call_request(None).to_map(ContextPacking::Flattened));
    take_unique_id(&mut inner);
    assert_eq!(
        Value::Object(inner),
        json!({
            "method": METHOD, "args": {},
            "_msg_id": "0123456789abcdef0123456789abcdef",
            "_reply_q": "reply_fedcba9876543210fedcba9876543210",
            "_timeout": null,
            "_context_user": "mark"
        })
    );
}

#[test]
fn call_fields_with_call_monitor_send_integer_seconds() {
    let inner = call_request(Some(30.0)).to_map(ContextPacking::Flattened);
    assert_eq!(inner["_timeout"], json!(30));
    assert!(
        inner["_timeout"].is_i64(),
        "whole seconds travel as an integer"
    );
    let text = String::from_utf8(envelope::encode(&inner).unwrap()).unwrap();
    assert!(
        text.contains(r#"\"_timeout\":30,"#) || text.contains(r#"\"_timeout\":30}"#),
        "{text}"
    );

    let inner = call_request(Some(2.5)).to_map(ContextPacking::Flattened);
    assert_eq!(inner["_timeout"], json!(2.5));
}

#[test]
fn call_fields_are_decoded_into_reply_address_and_client_timeout() {
    let sent = call_request(Some(30.0));
    let received =
        Request::from_map(through_envelope(&sent.to_map(ContextPacking::Flattened))).unwrap();
    let body = envelope::encode(&sent.to_map(ContextPacking::Flattened)).unwrap();
    assert_eq!(Request::decode(&body).unwrap(), received);
    assert_eq!(received.reply, sent.reply);
    assert_eq!(received.unique_id, sent.unique_id);
    // msg_id and reply_q are not part of the context; client_timeout is.
    assert_eq!(
        Value::Object(received.context.0.clone()),
        json!({"user": "mark", "client_timeout": 30})
    );
    assert_eq!(received.context.client_timeout(), Some(30.0));
}

/// The memory driver fills the call fields as oslo's `_send` does: `_msg_id` a uuid4
/// hex, `_reply_q` `reply_<uuid4 hex>`, `_timeout` the call-monitor timeout; a cast
/// carries none of them.
#[tokio::test]
async fn memory_driver_sends_oslo_call_fields() {
    let vhost = format!("wire_{}", new_id());
    let transport = DriverRegistry::with_memory()
        .transport(&format!("memory:///{vhost}"), &Config::default())
        .await
        .unwrap();
    let mut listener = transport
        .driver()
        .listen(&Target::topic("testtopic").server("testserver"))
        .await
        .unwrap();
    let client = RpcClient::new(&transport, Target::topic("testtopic"));

    let caller = {
        let client = client
            .clone()
            .timeout(Duration::from_secs(5))
            .call_monitor_timeout(Duration::from_secs(2));
        tokio::spawn(async move {
            client
                .call::<_, Value>(&Context::new().with("user", "mark"), "add", json!({"a": 1}))
                .await
        })
    };
    let incoming = tokio::time::timeout(Duration::from_secs(5), listener.next())
        .await
        .unwrap()
        .unwrap();
    let request = incoming.request.decode().unwrap();
    let reply = request.reply.clone().expect("a call has a reply address");
    assert!(is_uuid_hex(&reply.msg_id), "{}", reply.msg_id);
    let q = reply
        .reply_q
        .strip_prefix("reply_")
        .expect("reply_q starts with reply_");
    assert!(is_uuid_hex(q), "{}", reply.reply_q);
    assert_eq!(reply.call_monitor_timeout, Some(2.0));
    assert!(is_uuid_hex(request.unique_id.as_deref().unwrap()));
    assert_eq!(request.method, "add");
    assert_eq!(Value::Object(request.args.clone()), json!({"a": 1}));
    assert_eq!(
        Value::Object(request.context.0.clone()),
        json!({"user": "mark", "client_timeout": 2})
    );
    incoming
        .responder
        .expect("a call can be answered")
        .reply(Ok(json!(2)))
        .await
        .unwrap();
    assert_eq!(caller.await.unwrap().unwrap(), json!(2));

    client
        .cast(&Context::new(), "add", json!({"a": 2}))
        .await
        .unwrap();
    let incoming = tokio::time::timeout(Duration::from_secs(5), listener.next())
        .await
        .unwrap()
        .unwrap();
    assert!(incoming.responder.is_none());
    let request = incoming.request.decode().unwrap();
    assert_eq!(request.reply, None);
    assert_eq!(
        Value::Object(request.context.0),
        json!({"client_timeout": null})
    );
}

// ---------------------------------------------------------------------------------
// Replies and call-monitor heartbeats.
// ---------------------------------------------------------------------------------

const MSG_ID: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn reply_with_result_json() {
    let reply = Reply::new(MSG_ID, Ok(json!({"rx_id": 1})));
    let mut inner = through_envelope(&reply.to_map());
    assert_eq!(
        inner.keys().map(String::as_str).collect::<Vec<_>>(),
        ["result", "failure", "ending", "_msg_id", "_unique_id"]
    );
    assert_eq!(take_unique_id(&mut inner), reply.unique_id);
    assert_eq!(
        Value::Object(inner.clone()),
        json!({"result": {"rx_id": 1}, "failure": null, "ending": true, "_msg_id": MSG_ID})
    );
    assert!(!reply.is_heartbeat());
}

#[test]
fn reply_with_failure_json() {
    let reply = Reply::new(MSG_ID, Err(RemoteError::value_error("boom")));
    let mut inner = through_envelope(&reply.to_map());
    take_unique_id(&mut inner);
    assert_eq!(
        Value::Object(inner.clone()),
        json!({
            "result": null,
            "failure": r#"{"class": "ValueError", "module": "builtins", "message": "boom", "tb": [], "args": ["boom"], "kwargs": {}}"#,
            "ending": true,
            "_msg_id": MSG_ID
        })
    );
    let back = Reply::from_map(through_envelope(&reply.to_map())).unwrap();
    let failure = back.failure.expect("failure decoded");
    assert_eq!(
        (
            failure.class.as_str(),
            failure.module.as_str(),
            failure.message.as_str()
        ),
        ("ValueError", "builtins", "boom")
    );
    assert!(back.ending);
}

#[test]
fn heartbeat_json() {
    let beat = Reply::heartbeat(MSG_ID);
    assert!(beat.is_heartbeat());
    let mut inner = through_envelope(&beat.to_map());
    take_unique_id(&mut inner);
    assert_eq!(
        Value::Object(inner),
        json!({"result": null, "failure": null, "ending": false, "_msg_id": MSG_ID})
    );
    assert!(
        Reply::from_map(through_envelope(&beat.to_map()))
            .unwrap()
            .is_heartbeat()
    );
}

/// TestSendReceive's reply values: None, [], {}, False and 0 come back exactly.
#[test]
fn reply_falsy_results_are_preserved() {
    for value in [
        json!(null),
        json!([]),
        json!({}),
        json!(false),
        json!(0),
        json!({"rx_id": 3}),
    ] {
        let reply = Reply::new(MSG_ID, Ok(value.clone()));
        let back = Reply::from_map(through_envelope(&reply.to_map())).unwrap();
        assert_eq!(back.result, value);
        assert_eq!(back.failure, None);
        assert!(back.ending, "{value} ends the call");
        assert!(!back.is_heartbeat(), "{value} is a reply, not a heartbeat");
        assert_eq!(back.msg_id, MSG_ID);
        assert_eq!(back.unique_id, reply.unique_id);
    }
}

// ---------------------------------------------------------------------------------
// Notification messages.
// ---------------------------------------------------------------------------------

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

#[test]
fn notification_message_json() {
    let message = notification(Context::new().with("user_name", "bob"));
    let expected = json!({
        "message_id": "99863dda-97f0-443a-a0c1-6ed317b7fd45",
        "publisher_id": "test.localhost",
        "event_type": "test.notify",
        "priority": "INFO",
        "payload": {"foo": "bar"},
        "timestamp": "2014-03-03 18:21:04.369234",
        "_unique_id": MSG_ID,
        "_context_user_name": "bob"
    });
    let map = message.to_map(ContextPacking::Flattened);
    assert_eq!(Value::Object(map.clone()), expected);
    // messagingv2: in the envelope; messaging (v1): the bare dict.
    assert_eq!(Value::Object(through_envelope(&map)), expected);
    let bare: Value = serde_json::from_slice(&envelope::encode_bare(&map).unwrap()).unwrap();
    assert_eq!(bare, expected);
    for body in [
        envelope::encode(&map).unwrap(),
        envelope::encode_bare(&map).unwrap(),
    ] {
        assert_eq!(
            NotificationMessage::from_map(envelope::decode(&body).unwrap()).unwrap(),
            message
        );
        assert_eq!(NotificationMessage::decode(&body).unwrap(), message);
    }
}

#[test]
fn notification_message_without_context_has_no_context_keys() {
    let map = notification(Context::new()).to_map(ContextPacking::Flattened);
    assert!(!map.keys().any(|k| k.starts_with("_context")), "{map:?}");
    assert_eq!(map.len(), 7);
}

#[test]
fn notification_message_id_is_a_dashed_uuid4() {
    let id = new_message_id();
    assert_eq!(id.len(), 36);
    assert_eq!(id.matches('-').count(), 4);
    assert_eq!(&id[14..15], "4", "{id} is a version 4 uuid");
    assert_ne!(id, new_message_id());
}

fn at(h: u32, m: u32, s: u32, micros: u32) -> chrono::NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
        .unwrap()
        .and_hms_micro_opt(h, m, s, micros)
        .unwrap()
}

#[test]
fn python_timestamp_with_microseconds() {
    assert_eq!(
        python_timestamp(at(12, 0, 0, 123_456)),
        "2024-05-01 12:00:00.123456"
    );
    assert_eq!(
        python_timestamp(at(4, 5, 6, 7)),
        "2024-05-01 04:05:06.000007"
    );
}

#[test]
fn python_timestamp_drops_zero_microseconds() {
    assert_eq!(python_timestamp(at(12, 0, 0, 0)), "2024-05-01 12:00:00");
}

#[test]
fn python_timestamp_truncates_nanoseconds() {
    let t = chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
        .unwrap()
        .and_hms_nano_opt(12, 0, 0, 123_456_789)
        .unwrap();
    assert_eq!(python_timestamp(t), "2024-05-01 12:00:00.123456");
    let t = chrono::NaiveDate::from_ymd_opt(2024, 5, 1)
        .unwrap()
        .and_hms_nano_opt(12, 0, 0, 999)
        .unwrap();
    assert_eq!(python_timestamp(t), "2024-05-01 12:00:00");
}

#[test]
fn utc_now_timestamp_has_python_str_datetime_shape() {
    let ts = utc_now_timestamp();
    let re = regex::Regex::new(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{6})?$").unwrap();
    assert!(re.is_match(&ts), "{ts}");
}

// ---------------------------------------------------------------------------------
// Envelope decoding rules.
// ---------------------------------------------------------------------------------

#[test]
fn envelope_dict_lacking_a_key_is_returned_as_is() {
    for body in [
        json!({"method": "ping", "args": {}}),
        json!({"oslo.version": "2.0", "method": "ping"}),
        json!({"oslo.message": "{}", "event_type": "x"}),
    ] {
        let decoded = envelope::decode(body.to_string().as_bytes()).unwrap();
        assert_eq!(Value::Object(decoded), body);
    }
}

#[test]
fn envelope_versions_compatible_with_2_0_only() {
    let inner = r#"{"method": "ping"}"#;
    let ok = json!({"oslo.version": "2.0", "oslo.message": inner}).to_string();
    assert_eq!(
        envelope::decode(ok.as_bytes()).unwrap()["method"],
        json!("ping")
    );
    for version in ["1.0", "2.1", "2.0.1", "3.0"] {
        let body = json!({"oslo.version": version, "oslo.message": inner}).to_string();
        let text = malformed(envelope::decode(body.as_bytes()));
        assert!(
            text.contains("envelope version") && text.contains(version),
            "{version}: {text}"
        );
    }
}

// ---------------------------------------------------------------------------------
// Malformed messages: Error::Malformed naming the field.
// ---------------------------------------------------------------------------------

#[test]
fn malformed_bad_envelopes() {
    let cases: [(&[u8], &[&str]); 6] = [
        (b"not json", &["not valid JSON"]),
        (b"[1, 2]", &["JSON object", "an array"]),
        (
            br#"{"oslo.version": 2, "oslo.message": "{}"}"#,
            &["\"oslo.version\"", "string"],
        ),
        (
            br#"{"oslo.version": "2.0", "oslo.message": 5}"#,
            &["\"oslo.message\"", "string"],
        ),
        (
            br#"{"oslo.version": "2.0", "oslo.message": "{bad"}"#,
            &["\"oslo.message\"", "not valid JSON"],
        ),
        (
            br#"{"oslo.version": "2.0", "oslo.message": "[1]"}"#,
            &["\"oslo.message\"", "an array"],
        ),
    ];
    for (body, parts) in cases {
        let text = malformed(envelope::decode(body));
        for part in parts {
            assert!(
                text.contains(part),
                "{:?}: {text} lacks {part}",
                String::from_utf8_lossy(body)
            );
        }
    }
}

#[test]
fn malformed_args_not_an_object() {
    for args in [json!([1, 2]), json!("x"), json!(3)] {
        let text = request_malformed(json!({"method": METHOD, "args": args}));
        assert!(
            text.contains("\"args\"") && text.contains("object"),
            "{text}"
        );
    }
}

#[test]
fn malformed_method_not_a_string_or_missing() {
    let text = request_malformed(json!({"method": 5, "args": {}}));
    assert!(
        text.contains("\"method\"") && text.contains("a number"),
        "{text}"
    );
    let text = request_malformed(json!({"method": null}));
    assert!(text.contains("\"method\""), "{text}");
    let text = request_malformed(json!({"args": {}}));
    assert!(text.contains("no \"method\""), "{text}");
}

#[test]
fn malformed_msg_id_without_reply_q() {
    let text = request_malformed(json!({"method": METHOD, "_msg_id": MSG_ID}));
    assert!(
        text.contains("\"_msg_id\"") && text.contains("\"_reply_q\""),
        "{text}"
    );
    let text = request_malformed(json!({"method": METHOD, "_reply_q": "reply_x"}));
    assert!(
        text.contains("\"_reply_q\"") && text.contains("\"_msg_id\""),
        "{text}"
    );
}

#[test]
fn malformed_call_fields_of_wrong_type() {
    let text = request_malformed(
        json!({"method": METHOD, "_msg_id": MSG_ID, "_reply_q": "reply_x", "_timeout": "30"}),
    );
    assert!(text.contains("\"_timeout\""), "{text}");
    let text = request_malformed(json!({"method": METHOD, "_msg_id": 7, "_reply_q": "q"}));
    assert!(text.contains("\"_msg_id\""), "{text}");
    let text = request_malformed(json!({"method": METHOD, "namespace": ["a"]}));
    assert!(text.contains("\"namespace\""), "{text}");
    let text = request_malformed(json!({"method": METHOD, "version": 1.1}));
    assert!(text.contains("\"version\""), "{text}");
}

#[test]
fn malformed_replies() {
    let text = malformed(Reply::from_map(obj(json!({"result": 1, "ending": true}))));
    assert!(text.contains("\"_msg_id\""), "{text}");
    let text = malformed(Reply::from_map(obj(
        json!({"_msg_id": MSG_ID, "failure": 5}),
    )));
    assert!(text.contains("\"failure\""), "{text}");
}

#[test]
fn malformed_notifications() {
    let good = notification(Context::new()).to_map(ContextPacking::Flattened);
    for field in ["publisher_id", "event_type", "priority"] {
        let mut missing = good.clone();
        missing.remove(field);
        let text = notification_malformed(missing);
        assert!(text.contains(&format!("{field:?}")), "{text}");
        let mut wrong = good.clone();
        wrong.insert(field.into(), json!(["instance.swim", "instance.fly"]));
        let text = notification_malformed(wrong);
        assert!(
            text.contains(&format!("{field:?}")) && text.contains("string"),
            "{text}"
        );
    }
}

// ---------------------------------------------------------------------------------
// Bodies as drivers read them: bare, enveloped in the usual form, and envelopes
// written another way.
// ---------------------------------------------------------------------------------

#[test]
fn bare_and_enveloped_requests_decode_alike() {
    let inner = json!({
        "method": METHOD, "args": {"a": [1, "two"]}, "_unique_id": new_id(),
        "_context_user": "alice", "_msg_id": "m1", "_reply_q": "q1", "_timeout": 30
    });
    let expected = Request::from_map(obj(inner.clone())).unwrap();
    assert_eq!(
        Request::decode(inner.to_string().as_bytes()).unwrap(),
        expected
    );
    assert_eq!(
        Request::decode(&envelope::encode(&inner).unwrap()).unwrap(),
        expected
    );
    // The envelope's keys the other way round, and spaced otherwise.
    let reversed = format!(
        r#"{{ "oslo.message" : {}, "oslo.version" : "2.0" }}"#,
        Value::String(inner.to_string())
    );
    assert_eq!(Request::decode(reversed.as_bytes()).unwrap(), expected);
    // As oslo reads it, an object with both envelope keys is an envelope, whatever
    // else it holds (here a field that would be malformed in a bare request).
    let cluttered = format!(
        r#"{{"method": 5, "oslo.version": "2.0", "oslo.message": {}}}"#,
        Value::String(inner.to_string())
    );
    assert_eq!(Request::decode(cluttered.as_bytes()).unwrap(), expected);
}
