//! RPC: Python and Rust side by side

use super::*;

/// A Rust server joins the Python servers of a topic: it declares the same queues
/// (a flag mismatch would fail with PRECONDITION_FAILED), shares the load and gets
/// fanout casts; clients of both languages reach both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_servers_share_a_topic() {
    let s = setup().await;
    let topic = unique("mixed");
    let mut py = Peer::server(&s.url, &topic, "py1", &[]).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let rs = rust_server(&s.transport, &topic, "rs1", &tx, None).await;

    let c = client(&s.transport, &topic);
    for i in 0..10 {
        let n: i64 = c
            .call(&Context::new(), "add", json!({"a": i, "b": 1}))
            .await
            .unwrap();
        assert_eq!(n, i + 1);
    }
    let run = run_peer(&py_send(
        "call",
        &s.url,
        &topic,
        &["--repeat", "10", "add", r#"{"a": 1, "b": 1}"#],
    ))
    .await;
    assert_eq!(run.code, 0, "{run:#?}");
    assert_eq!(run.lines, vec![json!({"result": 2}); 10]);
    let on_py = py.drain(common::QUIET_PERIOD).await.len();
    let on_rs = drain(&mut rx, Duration::ZERO).await.len();
    assert_eq!(
        on_py + on_rs,
        20,
        "every call handled once: py {on_py}, rs {on_rs}"
    );
    assert!(
        on_py > 0 && on_rs > 0,
        "both share the load: py {on_py}, rs {on_rs}"
    );

    c.prepare()
        .fanout(true)
        .cast(&Context::new(), "echo", json!({"data": "from rust"}))
        .await
        .unwrap();
    let run = run_peer(&py_send(
        "cast",
        &s.url,
        &topic,
        &["--fanout", "echo", r#"{"data": "from python"}"#],
    ))
    .await;
    assert_eq!(run.code, 0, "{run:#?}");
    let mut py_got: Vec<Value> = py
        .take(2)
        .await
        .into_iter()
        .map(|l| l["args"]["data"].clone())
        .collect();
    let mut rs_got: Vec<Value> = vec![
        recv(&mut rx, "fanout 1").await.args["data"].clone(),
        recv(&mut rx, "fanout 2").await.args["data"].clone(),
    ];
    for got in [&mut py_got, &mut rs_got] {
        got.sort_by_key(|v| v.to_string());
        assert_eq!(*got, [json!("from python"), json!("from rust")]);
    }
    stop(rs).await;
    py.stop().await;
}

/// Servers and clients on a non-default exchange (a service's `control_exchange`)
/// find each other in both directions, and the default exchange does not reach them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_exchange_works_both_ways() {
    let s = setup().await;
    let topic = unique("exchange");
    let exchange = unique("nova");
    let py = Peer::server(&s.url, &topic, "py1", &["--exchange", &exchange]).await;
    let n: i64 = client(&s.transport, &topic)
        .prepare()
        .exchange(&exchange)
        .call(&Context::new(), "add", json!({"a": 1, "b": 2}))
        .await
        .unwrap();
    assert_eq!(n, 3);
    let err = client(&s.transport, &topic)
        .timeout(Duration::from_secs(2))
        .call::<_, Value>(&Context::new(), "add", json!({"a": 1, "b": 2}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout(_)),
        "the default exchange has no server: {err:?}"
    );
    py.stop().await;

    let rtopic = unique("rexchange");
    let (tx, _rx) = mpsc::unbounded_channel();
    let rs = RpcServer::new(
        &s.transport,
        Target::topic(&rtopic).server("rs1").exchange(&exchange),
    )
    .endpoint(recording_endpoint("rs1", tx))
    .start()
    .await
    .unwrap();
    let run = run_peer(&py_send(
        "call",
        &s.url,
        &rtopic,
        &["--exchange", &exchange, "add", r#"{"a": 2, "b": 2}"#],
    ))
    .await;
    assert_eq!(run.result(), &json!(4));
    stop(rs).await;
}
