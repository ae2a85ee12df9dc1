//! TestReplyWireFormat: how the server decodes a call request.

use super::*;

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
