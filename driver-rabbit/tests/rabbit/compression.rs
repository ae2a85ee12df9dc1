//! Compressed bodies (`kombu_compression`).

use super::*;

/// With `kombu_compression`, bodies travel compressed and say so in the
/// `compression` header; both codecs round-trip a call.
#[tokio::test]
async fn compressed_bodies_round_trip() {
    logs();
    for (codec, header) in [("gzip", "application/x-gzip"), ("bz2", "application/x-bz2")] {
        let transport = support::transport_with(
            &format!("[oslo_messaging_rabbit]\nkombu_compression = {codec}\n"),
            "",
        )
        .await;
        let topic = support::unique("compressed");
        let server = support::echo_server(&transport, &topic).await;
        let client = RpcClient::new(&transport, Target::topic(topic.clone()));
        let big = "x".repeat(10_000);
        assert_eq!(echo(&client, json!(big)).await.unwrap(), json!(big));

        // A raw consumer on a queue of its own sees the header and a small body.
        let connection = support::raw().await;
        let channel = connection.create_channel().await.unwrap();
        let queue = support::unique("peek");
        support::declare_bound(&channel, &queue, &topic, FieldTable::default()).await;
        let mut consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "peek".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        client
            .cast(&Context::new(), "echo", json!({ "data": big }))
            .await
            .unwrap();
        let delivery = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("the cast arrives")
            .unwrap()
            .unwrap();
        let headers = delivery.properties.headers().clone().unwrap_or_default();
        assert_eq!(
            headers.inner().get("compression"),
            Some(&AMQPValue::LongString(header.into())),
            "{codec}"
        );
        assert!(
            delivery.data.len() < 1_000,
            "{codec}: {} bytes",
            delivery.data.len()
        );
        let _ = channel
            .queue_delete(queue.as_str().into(), Default::default())
            .await;
        let _ = connection.close(200, "OK".into()).await;
        finish(server, transport).await;
    }
}
