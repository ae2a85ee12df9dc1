//! TestRequestWireFormat: what a cast puts on the wire.

use super::*;

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
