//! Recovery without restarting anything: the broker closes the driver's connections,
//! or the RabbitMQ application stops and starts again, while a server and a client
//! run. Both come back by themselves and calls work again.
//!
//! These tests disturb the broker, so they run one at a time in a binary of their own
//! and touch only this process's connections where they can.

mod support;

use std::time::Duration;

use messaging_core::{Context, RpcClient, RpcServer, Target, Transport};
use serde_json::{Value, json};
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// A transport, an echo server on a fresh topic and a client that has made one call.
async fn running(what: &str) -> (Transport, RpcServer, RpcClient) {
    let transport = support::transport().await;
    let topic = support::unique(what);
    let server = support::echo_server(&transport, &topic).await;
    let client =
        RpcClient::new(&transport, Target::topic(topic.clone())).timeout(Duration::from_secs(5));
    let first = call_until_ok(&client, "before", Duration::ZERO).await;
    assert_eq!(first.unwrap(), json!("before"));
    (transport, server, client)
}

/// Calls until one succeeds, for at most `limit`; returns the last outcome.
async fn call_until_ok(
    client: &RpcClient,
    data: &str,
    limit: Duration,
) -> messaging_core::Result<Value> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let outcome = client
            .call::<_, Value>(&Context::new(), "echo", json!({ "data": data }))
            .await;
        if outcome.is_ok() || tokio::time::Instant::now() >= deadline {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn recovers_when_the_broker_closes_its_connections() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let (transport, server, client) = running("recover").await;
    let pids = support::our_connections();
    assert!(
        pids.len() >= 3,
        "send, reply and server connections: {pids:?}"
    );
    for pid in &pids {
        support::rabbitmqctl(&["close_connection", pid, "test: closing the connection"]);
    }
    let after = call_until_ok(&client, "after", Duration::from_secs(30)).await;
    assert_eq!(after.unwrap(), json!("after"));
    let again = support::our_connections();
    assert!(
        again.iter().all(|p| !pids.contains(p)),
        "new connections: {pids:?} then {again:?}"
    );
    server.stop().await;
    server.wait().await.unwrap();
    transport.cleanup().await;
}

/// The broker-restart test: `rabbitmqctl stop_app` then `start_app`.
#[tokio::test]
async fn recovers_from_a_broker_restart() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let (transport, server, client) = running("restart").await;
    support::rabbitmqctl(&["stop_app"]);
    let started = tokio::task::spawn_blocking(|| {
        std::thread::sleep(Duration::from_secs(2));
        support::rabbitmqctl(&["start_app"]);
        support::rabbitmqctl(&["await_startup"]);
    });
    started.await.unwrap();
    let after = call_until_ok(&client, "after", Duration::from_secs(60)).await;
    assert_eq!(after.unwrap(), json!("after"));
    server.stop().await;
    server.wait().await.unwrap();
    transport.cleanup().await;
}

/// With `rabbit_stream_fanout`, a server whose connection the broker closed reads the
/// stream on from just after the last message it had: the fanout casts sent while it
/// was away reach it, and none it had already handled comes again.
#[tokio::test]
async fn a_stream_fanout_server_resumes_after_its_last_message() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let ini = "[oslo_messaging_rabbit]\nrabbit_stream_fanout = true\n\
               rabbit_transient_quorum_queue = true\nrabbit_qos_prefetch_count = 10\n";
    let server_transport = support::transport_with(ini, "").await;
    let topic = support::unique("stream-resume");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let endpoint = messaging_core::Endpoint::new().method(
        "note",
        move |_c: Context, a: serde_json::Map<String, Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(a.get("n").cloned().unwrap_or(Value::Null));
                Ok::<_, messaging_core::RemoteError>(Value::Null)
            }
        },
    );
    let server = RpcServer::new(&server_transport, Target::topic(topic.clone()).server("s1"))
        .endpoint(endpoint)
        .start()
        .await
        .expect("a server reading the fanout stream");
    // Before the client's connections exist: this process has the server's only.
    let servers = support::our_connections();
    assert_eq!(servers.len(), 1, "the server's connection: {servers:?}");
    let client_transport = support::transport_with(ini, "").await;
    let fanout = RpcClient::new(&client_transport, Target::topic(topic.clone()))
        .prepare()
        .fanout(true);
    let cast = |n: u32| {
        let fanout = fanout.clone();
        async move {
            fanout
                .cast(&Context::new(), "note", json!({ "n": n }))
                .await
                .expect("a fanout cast")
        }
    };
    cast(1).await;
    assert_eq!(next(&mut rx).await, Some(json!(1)));

    // The server's connection only (the client's stays up to publish meanwhile).
    support::rabbitmqctl(&[
        "close_connection",
        &servers[0],
        "test: closing the server's",
    ]);
    cast(2).await;
    cast(3).await;
    assert_eq!(next(&mut rx).await, Some(json!(2)));
    assert_eq!(next(&mut rx).await, Some(json!(3)));
    let again = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await;
    assert!(again.is_err(), "nothing more, no repeat: {again:?}");

    server.stop().await;
    server.wait().await.unwrap();
    server_transport.cleanup().await;
    client_transport.cleanup().await;
    support::rabbitmqctl(&["delete_queue", &format!("{topic}_fanout")]);
}

/// The next value on `rx`, within 30 s.
async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Option<Value> {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .expect("a fanout cast arrives within 30 s")
}
