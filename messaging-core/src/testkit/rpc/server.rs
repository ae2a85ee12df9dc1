//! A server's life: building it (a bad endpoint), stopping and draining, restarting,
//! and its concurrency limit.

use super::*;

/// An endpoint method named `target` is refused when the server is built.
pub async fn bad_endpoint(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let endpoint = Endpoint::new().method("target", |_c: Context, v: Value| async move {
        Ok::<_, RemoteError>(v)
    });
    let err = RpcServer::new(&transport, Target::topic(unique("bad")).server("s"))
        .endpoint(endpoint)
        .build()
        .err();
    assert!(matches!(err, Some(Error::Config(_))), "{err:?}");
    Ok(())
}

/// `stop` takes no new requests, `wait` lets in-flight ones finish and reply.
pub async fn server_stop_drains_in_flight(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("drain"), None, 1).await?;
    let client = group.client();
    let call = tokio::spawn(async move {
        client
            .call::<_, f64>(&ctx(), "long_running_task", json!({"seconds": 0.5}))
            .await
    });
    // Stop while the request is being handled.
    eventually(|| group.states[0].lock().unwrap().started > 0).await;
    assert_eq!(
        group.states[0].lock().unwrap().started,
        1,
        "the call arrived"
    );
    group.servers[0].stop().await;
    group.servers[0].wait().await?;
    assert_eq!(
        group.states[0].lock().unwrap().calls,
        1,
        "the in-flight call finished before wait returned"
    );
    assert_eq!(call.await.expect("call task")?, 0.5);
    let late = group.client().timeout(Duration::from_millis(300));
    let err = late
        .call::<_, i64>(&ctx(), "add", json!({"increment": 1}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout(_)),
        "a stopped server takes nothing: {err:?}"
    );
    group.servers[0].start().await?;
    let ival: i64 = group
        .client()
        .call(&ctx(), "add", json!({"increment": 1}))
        .await?;
    assert!(ival >= 1);
    group.stop().await
}

/// A server can be started again after stop and wait; a second start is ignored.
pub async fn server_restart(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("restart"), None, 1).await?;
    let server = &group.servers[0];
    server.start().await?;
    for round in 1..=3 {
        let ival: i64 = group
            .client()
            .call(&ctx(), "add", json!({"increment": 1}))
            .await?;
        assert_eq!(ival, round);
        server.stop().await;
        server.wait().await?;
        server.stop().await;
        server.wait().await?;
        server.start().await?;
    }
    group.stop().await
}

/// At most `max_concurrency` requests run at once.
pub async fn concurrency_limit(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let topic = unique("limit");
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let endpoint = Endpoint::new().method("work", move |_c: Context, _: Value| {
        let (r, p) = (r.clone(), p.clone());
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, RemoteError>(())
        }
    });
    let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("s"))
        .endpoint(endpoint)
        .max_concurrency(2)
        .start()
        .await?;
    let client = RpcClient::new(&transport, Target::topic(topic)).timeout(Duration::from_secs(5));
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.call::<_, ()>(&ctx(), "work", json!({})).await })
        })
        .collect();
    for c in calls {
        c.await.expect("call task")?;
    }
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    server.stop().await;
    server.wait().await
}
