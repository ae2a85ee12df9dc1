//! Bodies as drivers read them: bare, enveloped in the usual form, and envelopes
//! written another way.

use super::*;

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
