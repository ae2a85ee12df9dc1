//! Call fields: `_msg_id`, `_reply_q`, `_timeout`.

use super::*;

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
