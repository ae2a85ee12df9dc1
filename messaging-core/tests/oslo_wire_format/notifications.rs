//! Notification messages.

use super::*;

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
