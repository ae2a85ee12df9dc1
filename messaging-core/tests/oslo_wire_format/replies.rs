//! Replies and call-monitor heartbeats.

use super::*;

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
