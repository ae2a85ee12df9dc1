//! Envelope decoding rules.

use super::*;

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
