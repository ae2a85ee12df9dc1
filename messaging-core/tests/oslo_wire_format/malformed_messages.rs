//! Malformed messages: Error::Malformed naming the field.

use super::*;

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
