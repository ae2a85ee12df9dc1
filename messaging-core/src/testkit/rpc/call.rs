//! Calls: to one server or a group, across exchanges, timeouts (also beside
//! concurrent calls), remote exceptions, mandatory delivery and the call monitor.

use super::*;

/// Calls directed to one server change only that server; results are right.
pub async fn call_specific_server(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("specific"), None, 3).await?;
    let client = group.client().server(group.names[1].clone());
    let text: String = client
        .call(&ctx(), "append", json!({"text": "open"}))
        .await?;
    assert_eq!(text, "open");
    let text: String = client
        .call(&ctx(), "append", json!({"text": "stack"}))
        .await?;
    assert_eq!(text, "openstack");
    let ival: i64 = client.call(&ctx(), "add", json!({"increment": 12})).await?;
    assert_eq!(ival, 12);
    let ival: i64 = client
        .call(&ctx(), "subtract", json!({"increment": 3}))
        .await?;
    assert_eq!(ival, 9);
    assert_eq!(group.calls(), vec![0, 4, 0]);
    group.stop().await
}

/// Calls on the bare topic are spread over every server, none lost or repeated.
///
/// Which server takes a request is the transport's choice. A broker that pushes deals
/// them round-robin; where servers poll (Zaqar), whoever asks first takes what is
/// waiting, and an idle server asks less often, so a run of quick calls can all go to
/// one or two servers. After oslo's 30 calls, more are made until every server has
/// taken some (for at most the suite's 30 s arrival limit).
pub async fn call_server_in_group(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("group"), None, 3).await?;
    let client = group.client();
    let deadline = tokio::time::Instant::now() + ARRIVAL_LIMIT;
    let mut made = 0;
    while made < 30 || (!group.every_server_served() && tokio::time::Instant::now() < deadline) {
        let _: i64 = client.call(&ctx(), "add", json!({"increment": 1})).await?;
        made += 1;
    }
    let calls = group.calls();
    assert_eq!(calls.iter().sum::<usize>(), made, "{calls:?}");
    assert!(
        group.every_server_served(),
        "every server gets some of {made} calls: {calls:?}"
    );
    let total: i64 = group.states.iter().map(|s| s.lock().unwrap().ival).sum();
    assert_eq!(total, made as i64);
    group.stop().await
}

/// Groups in different exchanges are isolated. Each group has its own topic, as in
/// oslo's functional test: on RabbitMQ queue names are global, so one topic in two
/// exchanges would share its queue.
pub async fn call_different_exchanges(factory: &TransportFactory) -> Result<()> {
    let (xa, xb) = (unique("a"), unique("b"));
    let g1 = Group::start(factory, &unique("exchanges"), None, 2).await?;
    let g2 = Group::start(factory, &unique("exchanges"), Some(&xa), 2).await?;
    let g3 = Group::start(factory, &unique("exchanges"), Some(&xb), 2).await?;
    for g in [&g1, &g2] {
        let client = g.client();
        for _ in 0..4 {
            let _: i64 = client.call(&ctx(), "add", json!({"increment": 1})).await?;
        }
        let _: i64 = client
            .prepare()
            .server(g.names[0].clone())
            .call(&ctx(), "add", json!({"increment": 1}))
            .await?;
        assert_eq!(g.calls().iter().sum::<usize>(), 5, "{:?}", g.calls());
    }
    assert_eq!(g3.calls(), vec![0, 0], "the third exchange got nothing");
    g1.stop().await?;
    g2.stop().await?;
    g3.stop().await
}

/// A call nobody serves times out.
pub async fn call_timeout(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let client = RpcClient::new(&transport, Target::topic(unique("nobody")))
        .timeout(Duration::from_millis(300));
    let err = client
        .call::<_, Value>(&ctx(), "add", json!({"increment": 1}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    Ok(())
}

/// The server's ValueError reaches the caller as builtins.ValueError.
pub async fn call_exception(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("exception"), None, 1).await?;
    let err = group
        .client()
        .call::<_, i64>(&ctx(), "subtract", json!({"increment": 3}))
        .await
        .unwrap_err();
    match err {
        Error::Remote(remote) => {
            assert!(remote.is("builtins", "ValueError"), "{remote:?}");
            assert_eq!(remote.message, "ival can't go negative");
        }
        other => panic!("expected a remote ValueError, got {other:?}"),
    }
    group.stop().await
}

/// A long call times out while concurrent short calls on the same reply queue succeed.
pub async fn call_timeout_with_concurrent_calls(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("concurrent"), None, 1).await?;
    let client = group.client();
    let slow = client.prepare().timeout(Duration::from_millis(500));
    let long = tokio::spawn(async move {
        slow.call::<_, f64>(&ctx(), "long_running_task", json!({"seconds": 1.5}))
            .await
    });
    let mut short = Vec::new();
    for _ in 0..10 {
        let c = client.clone();
        short.push(tokio::spawn(async move {
            c.call::<_, i64>(&ctx(), "add", json!({"increment": 1}))
                .await
        }));
    }
    for s in short {
        s.await.expect("call task")?;
    }
    assert_eq!(group.states[0].lock().unwrap().ival, 10);
    let err = long.await.expect("call task").unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    group.stop().await
}

/// With at_least_once, a call to a server that does not exist fails at once with
/// Undeliverable; without it, it times out.
pub async fn mandatory_call(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("mandatory"), None, 1).await?;
    let client = group
        .client()
        .server(unique("ghost"))
        .timeout(Duration::from_millis(500));
    let err = client
        .call::<_, i64>(&ctx(), "add", json!({"increment": 1}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    let started = std::time::Instant::now();
    let err = client
        .prepare()
        .at_least_once(true)
        .call::<_, i64>(&ctx(), "add", json!({"increment": 1}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Undeliverable { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "undeliverable is reported before the timeout"
    );
    let cast = group.client().server(unique("ghost")).at_least_once(true);
    let err = cast
        .cast(&ctx(), "add", json!({"increment": 1}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Undeliverable { .. }), "{err:?}");
    group.stop().await
}

/// A call longer than its timeout fails; with a call-monitor timeout, server
/// heartbeats keep a long call alive.
pub async fn monitor_long_call(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("monitor"), None, 1).await?;
    let client = group.client();
    let err = client
        .prepare()
        .timeout(Duration::from_millis(500))
        .call::<_, f64>(&ctx(), "long_running_task", json!({"seconds": 1.5}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    let seconds: f64 = client
        .prepare()
        .timeout(Duration::from_secs(3600))
        .call_monitor_timeout(Duration::from_secs(2))
        .call(&ctx(), "long_running_task", json!({"seconds": 3.0}))
        .await?;
    assert_eq!(seconds, 3.0);
    group.stop().await
}
