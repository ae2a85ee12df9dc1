//! Failover of RPC: the node of a server, then of a client, crashes, and again during
//! a call; with a multi-host URL and behind HAProxy.

use super::*;

/// A server and a client (each with a transport of its own) on `url`.
async fn server_and_client(
    url: &str,
    ini: &str,
    topic: &str,
) -> (Transport, RpcServer, Transport, RpcClient) {
    let server_transport = transport(url, ini).await;
    let server = RpcServer::new(
        &server_transport,
        Target::topic(topic.to_string()).server("s1"),
    )
    .endpoint(endpoint())
    .start()
    .await
    .expect("server starts");
    let client_transport = transport(url, ini).await;
    let client = RpcClient::new(&client_transport, Target::topic(topic.to_string()))
        .timeout(Duration::from_secs(10));
    assert_eq!(echo(&client, "first").await.unwrap(), json!("first"));
    (server_transport, server, client_transport, client)
}

/// The failover scenario: the server's node crashes, then the client's, then the
/// server's again during a call. Each time the peers reconnect to a live node and
/// every call made after the failover succeeds.
async fn failover_rounds(url: &str, ini: &str, topic: &str) {
    let (server_transport, server, client_transport, client) =
        server_and_client(url, ini, topic).await;
    let server_queue = format!("{topic}.s1");
    let serving = |q: &str| q == server_queue;
    let replies = |q: &str| q.starts_with("reply_");

    // 1. The server's node.
    let node = wait_for_consumer("the server", serving).await;
    let crashed = Instant::now();
    crash(node).await;
    let took = recovered(&client, crashed).await;
    eprintln!("server's node omsg{node} crashed: calls succeed again after {took:?}");
    every_call_succeeds(&client, "server failover").await;
    let now = wait_for_consumer("the server", serving).await;
    assert_ne!(now, node, "the server consumes from a live node");
    restart(node).await;

    // 2. The client's (its reply queue's consumer).
    let node = wait_for_consumer("the client's replies", replies).await;
    let crashed = Instant::now();
    crash(node).await;
    let took = recovered(&client, crashed).await;
    eprintln!("client's node omsg{node} crashed: calls succeed again after {took:?}");
    every_call_succeeds(&client, "client failover").await;
    restart(node).await;

    // 3. The server's node again, while a call runs on it: that call ends within its
    // timeout (with its reply or an error), and the calls after it succeed.
    let node = wait_for_consumer("the server", serving).await;
    let slow_client = client.clone().timeout(Duration::from_secs(6));
    let in_flight = tokio::spawn(async move {
        let started = Instant::now();
        let outcome = slow_client
            .call::<_, Value>(&Context::new(), "slow", json!({"data": "slow"}))
            .await;
        (outcome, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let crashed = Instant::now();
    crash(node).await;
    let (outcome, took) = in_flight.await.unwrap();
    eprintln!("call in flight during the crash of omsg{node}: {outcome:?} after {took:?}");
    assert!(
        took < Duration::from_secs(8),
        "the call in flight ended within its timeout"
    );
    if let Ok(v) = outcome {
        assert_eq!(v, json!("slow"));
    }
    let took = recovered(&client, crashed).await;
    eprintln!("server's node omsg{node} crashed during a call: calls succeed again after {took:?}");
    every_call_succeeds(&client, "failover during a call").await;
    restart(node).await;
    every_call_succeeds(&client, "the node's return").await;

    server.stop().await;
    server.wait().await.unwrap();
    server_transport.cleanup().await;
    client_transport.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_with_a_multi_host_url() {
    let Some(_alone) = on_the_cluster().await else {
        return;
    };
    failover_rounds(
        &cluster_url(&NODES),
        FAST_RECONNECT,
        &support::unique("failover"),
    )
    .await;
}

/// The same behind HAProxy (active/backup) with a single-host URL: the crashed node's
/// connections are cut and the peers reconnect through the proxy to a backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_through_haproxy() {
    let Some(_alone) = on_the_cluster().await else {
        return;
    };
    failover_rounds(
        &cluster_url(&[HAPROXY]),
        FAST_RECONNECT,
        &support::unique("haproxy"),
    )
    .await;
}
