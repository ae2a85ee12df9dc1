//! Context sanitising: credentials never leave in a notification.

use super::*;

fn sanitised() -> Value {
    json!({
        "user_name": "bob",
        "project_id": "demo",
        "auth_token": null,
        "auth_token_info": null,
        "service_token": null,
        "service_catalog": null,
        "password": null
    })
}

#[tokio::test]
async fn context_credentials_are_removed() {
    let transport = memory_transport(&Config::default()).await;
    let record = TestNotifications::new();
    let ctx = credential_context();
    Notifier::new(&transport, "test")
        .sinks([Sink::Test(record.clone())])
        .info(&ctx, EVENT, json!({}))
        .await;
    assert_eq!(
        Value::Object(record.take()[0].message.context.0.clone()),
        sanitised()
    );
    assert_eq!(
        ctx,
        credential_context(),
        "the caller's context is left alone"
    );
}

#[tokio::test]
async fn context_credentials_do_not_travel() {
    let transport = memory_transport(&Config::default()).await;
    let (listeners, mut rx) = listen_on_candidates(&transport, Priority::Info).await;
    Notifier::new(&transport, "test")
        .info(&credential_context(), EVENT, json!({}))
        .await;
    let got = receive_exactly(&mut rx, 1, "sanitised").await;
    assert_eq!(Value::Object(got[0].1.context.0.clone()), sanitised());
    for l in listeners {
        l.stop().await;
    }
}
