//! Messages that cannot be handled or delivered: malformed requests, replies to a
//! reply queue that is gone, and sends the broker refuses.

use super::*;

/// Not JSON, an unknown envelope version, a request without a method, a bad
/// compression header: each is logged and rejected without requeue, and the server
/// goes on serving.
#[tokio::test]
async fn malformed_requests_are_rejected_and_the_server_keeps_serving() {
    logs();
    let transport = support::transport().await;
    let topic = support::unique("malformed");
    let server = support::echo_server(&transport, &topic).await;
    let connection = support::raw().await;
    let channel = connection.create_channel().await.unwrap();
    let mut gzip_headers = FieldTable::default();
    gzip_headers.insert(
        "compression".into(),
        AMQPValue::LongString("application/x-gzip".into()),
    );
    let bad: [(&[u8], FieldTable); 5] = [
        (b"not json at all", FieldTable::default()),
        (
            br#"{"oslo.version": "3.0", "oslo.message": "{}"}"#,
            FieldTable::default(),
        ),
        (
            br#"{"oslo.version": "2.0", "oslo.message": "{\"args\": {}}"}"#,
            FieldTable::default(),
        ),
        (br#"[1, 2, 3]"#, FieldTable::default()),
        (b"\x00\x01 not zlib", gzip_headers),
    ];
    for (body, headers) in bad {
        channel
            .basic_publish(
                "openstack".into(),
                topic.as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_headers(headers),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let client = RpcClient::new(&transport, Target::topic(topic.clone()));
    assert_eq!(
        echo(&client, json!("still here")).await.unwrap(),
        json!("still here")
    );
    // Rejected without requeue: nothing ready, nothing unacknowledged.
    let mut info = String::new();
    for _ in 0..50 {
        info = support::queue_info(&topic, &["messages"]).expect("topic queue");
        if info.ends_with("\t0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(info, format!("{topic}\t0"));
    let logged = log_text();
    assert!(
        logged.matches("malformed request rejected").count() >= 5,
        "every malformed request is logged:\n{logged}"
    );
    let _ = connection.close(200, "OK".into()).await;
    finish(server, transport).await;
}

/// A reply whose queue is gone is retried for `kombu_missing_consumer_retry_timeout`,
/// then dropped and the queue remembered, and the server goes on serving (§2.9).
#[tokio::test]
async fn replies_to_a_missing_reply_queue_give_up_and_the_server_goes_on() {
    logs();
    let transport = support::transport_with(
        "[oslo_messaging_rabbit]\nkombu_missing_consumer_retry_timeout = 1\n",
        "",
    )
    .await;
    let topic = support::unique("noreply");
    let server = support::echo_server(&transport, &topic).await;
    let gone = support::unique("reply_gone");
    let connection = support::raw().await;
    let channel = connection.create_channel().await.unwrap();
    let inner = json!({
        "method": "echo", "args": {"data": 1}, "_msg_id": "m1", "_reply_q": gone,
        "_timeout": null, "_unique_id": support::unique("u"),
    });
    let body = json!({"oslo.version": "2.0", "oslo.message": inner.to_string()}).to_string();
    channel
        .basic_publish(
            "openstack".into(),
            topic.as_str().into(),
            BasicPublishOptions::default(),
            body.as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let client = RpcClient::new(&transport, Target::topic(topic.clone()));
    assert_eq!(
        echo(&client, json!("served")).await.unwrap(),
        json!("served")
    );
    let mut logged = String::new();
    while started.elapsed() < Duration::from_secs(10) {
        logged = log_text();
        if logged.contains(&format!("reply_q=\"{gone}\"")) && logged.contains("reply queue missing")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(logged.contains("reply queue missing"), "{logged}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "retried for about a second"
    );
    let _ = connection.close(200, "OK".into()).await;
    finish(server, transport).await;
}

/// A broker that refuses a message (a nack: here a full queue that rejects publishes,
/// as a quorum queue without a leader does during a failover) gets it again after
/// the retry interval: with a bounded `retry` the send fails naming the refusal, with
/// the default it goes through once there is room.
#[tokio::test]
async fn refused_at_least_once_sends_are_published_again() {
    let transport = support::transport_with(
        "[oslo_messaging_rabbit]\nrabbit_retry_interval = 1\nrabbit_retry_backoff = 0\n",
        "",
    )
    .await;
    let topic = support::unique("refused");
    let client = RpcClient::new(&transport, Target::topic(topic.clone())).at_least_once(true);
    // The exchange, declared by the driver; then a queue of one message that refuses more.
    let _ = client.cast(&Context::new(), "noop", json!({})).await;
    let raw = support::raw().await;
    let channel = raw.create_channel().await.unwrap();
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongInt(1));
    arguments.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    support::declare_bound(&channel, &topic, &topic, arguments).await;

    client
        .cast(&Context::new(), "one", json!({}))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let refused = client
        .clone()
        .retry(Retry::Times(1))
        .cast(&Context::new(), "two", json!({}))
        .await
        .unwrap_err();
    // Says what refused it and how often: the first publish and one retry.
    assert!(
        matches!(&refused, Error::DeliveryFailure(m)
            if m.contains("refused by the broker (nack) 2 time(s)") && m.contains("retry = 1")),
        "{refused}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "published again after the retry interval"
    );

    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.cast(&Context::new(), "three", json!({})).await }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!waiting.is_finished(), "refused while the queue is full");
    let taken = channel
        .basic_get(topic.as_str().into(), Default::default())
        .await
        .unwrap()
        .expect("the first cast is queued");
    taken.ack(Default::default()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the cast went through once there was room")
        .unwrap()
        .unwrap();
    let left = channel
        .basic_get(topic.as_str().into(), Default::default())
        .await
        .unwrap()
        .expect("the third cast is queued");
    assert!(String::from_utf8_lossy(&left.delivery.data).contains("three"));
    channel
        .queue_delete(topic.as_str().into(), Default::default())
        .await
        .unwrap();
    transport.cleanup().await;
}
