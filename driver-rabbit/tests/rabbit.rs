//! The driver against the real RabbitMQ: what the conformance suite cannot see
//! (declare flags and arguments on the broker, malformed messages, compression,
//! failover, reconnection, passwords kept out of errors, logs and `Debug`).

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use lapin::BasicProperties;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions};
use lapin::types::{AMQPValue, FieldTable};
use messaging_core::{Context, Error, Retry, RpcClient, RpcServer, Target};
use serde_json::{Value, json};

/// Everything logged by this test binary, to search for passwords and warnings.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(move || Capture(sink.clone()))
            .init();
        buffer
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

/// Stops a server and the transport gracefully.
async fn finish(server: RpcServer, transport: messaging_core::Transport) {
    server.stop().await.unwrap();
    server.wait().await.unwrap();
    transport.cleanup().await;
}

async fn echo(client: &RpcClient, data: Value) -> messaging_core::Result<Value> {
    client
        .call(&Context::new(), "echo", json!({ "data": data }))
        .await
}

/// `rabbitmqctl list_queues` lines without the `x-queue-type` RabbitMQ 4 lists for
/// classic queues declared without one.
fn without_classic_type(line: &str) -> String {
    line.replace(",{\"x-queue-type\",\"classic\"}", "")
        .replace("{\"x-queue-type\",\"classic\"},", "")
        .replace("{\"x-queue-type\",\"classic\"}", "")
}

/// Declares flags and arguments as Python oslo.messaging does: queues `<topic>` and
/// `<topic>.<server>` non-durable without arguments, the fanout queue with
/// `x-expires`, the topic exchange non-durable and the fanout exchange auto-delete.
/// Where the broker refuses transient queues that are not exclusive (RabbitMQ 4.3), the
/// topic and server queues are durable instead.
#[tokio::test]
async fn topology_on_the_broker_matches_oslo() {
    logs();
    let durable = support::refuses_transient_queues().await;
    let transport = support::transport().await;
    let topic = support::unique("topo");
    let server = support::echo_server(&transport, &topic).await;
    let client = RpcClient::new(&transport, Target::topic(topic.clone()));
    assert_eq!(echo(&client, json!(1)).await.unwrap(), json!(1));

    let columns = ["durable", "auto_delete", "arguments"];
    let topic_q = support::queue_info(&topic, &columns).expect("topic queue");
    assert_eq!(
        without_classic_type(&topic_q),
        format!("{topic}\t{durable}\tfalse\t[]")
    );
    let server_q = support::queue_info(&format!("{topic}.s1"), &columns).expect("server queue");
    assert_eq!(
        without_classic_type(&server_q),
        format!("{topic}.s1\t{durable}\tfalse\t[]")
    );
    let queues = support::rabbitmqctl(&[
        "list_queues",
        "-q",
        "--no-table-headers",
        "name",
        "durable",
        "auto_delete",
        "arguments",
    ]);
    let queues = without_classic_type(&queues);
    let fanout_q = queues
        .lines()
        .find(|l| l.starts_with(&format!("{topic}_fanout_")))
        .expect("fanout queue");
    assert!(
        fanout_q.contains("\tfalse\tfalse\t[{\"x-expires\",1800000}]"),
        "{fanout_q}"
    );
    let reply_q = queues
        .lines()
        .filter(|l| l.starts_with("reply_"))
        // Not the quorum reply queues of tests configured otherwise.
        .find(|l| l.contains("x-expires") && !l.contains("\"quorum\""))
        .expect("reply queue");
    assert!(
        reply_q.contains("\tfalse\tfalse\t[{\"x-expires\",1800000}]"),
        "{reply_q}"
    );
    let exchanges = support::rabbitmqctl(&[
        "list_exchanges",
        "-q",
        "--no-table-headers",
        "name",
        "type",
        "durable",
        "auto_delete",
    ]);
    assert!(
        exchanges
            .lines()
            .any(|l| l == "openstack\ttopic\tfalse\tfalse"),
        "{exchanges}"
    );
    assert!(
        exchanges
            .lines()
            .any(|l| l == format!("{topic}_fanout\tfanout\tfalse\ttrue")),
        "{exchanges}"
    );

    server.stop().await.unwrap();
    server.wait().await.unwrap();
    // A graceful shutdown deletes the fanout queue.
    let after = support::rabbitmqctl(&["list_queues", "-q", "--no-table-headers", "name"]);
    assert!(
        !after
            .lines()
            .any(|l| l.starts_with(&format!("{topic}_fanout_"))),
        "{after}"
    );
    transport.cleanup().await;
}

/// Quorum queues (with a delivery limit), transient quorum reply and fanout queues,
/// a transient TTL and the prefetch count, all from options, some of them given as
/// URL query parameters.
#[tokio::test]
async fn queue_options_reach_the_broker() {
    logs();
    // Quorum queues make the control exchange durable: one of the test's own.
    let (ini, exchange) = support::own_exchange(
        "quorumx",
        "[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\nrabbit_quorum_delivery_limit = 3\nrabbit_transient_quorum_queue = true\n",
    );
    let transport = support::transport_with(
        &ini,
        "?rabbit_qos_prefetch_count=7&rabbit_transient_queues_ttl=600",
    )
    .await;
    let topic = support::unique("quorum");
    let server = support::echo_server(&transport, &topic).await;
    let client = RpcClient::new(&transport, Target::topic(topic.clone()).server("s1"));
    assert_eq!(echo(&client, json!("q")).await.unwrap(), json!("q"));

    let info = support::queue_info(&topic, &["durable", "type", "arguments"]).expect("queue");
    assert!(info.contains("\ttrue\tquorum\t"), "{info}");
    assert!(info.contains("{\"x-delivery-limit\",3}"), "{info}");
    let queues = support::rabbitmqctl(&[
        "list_queues",
        "-q",
        "--no-table-headers",
        "name",
        "type",
        "arguments",
    ]);
    let queues = without_classic_type(&queues);
    let fanout_q = queues
        .lines()
        .find(|l| l.starts_with(&format!("{topic}_fanout_")))
        .expect("fanout queue");
    assert!(fanout_q.contains("\tquorum\t"), "{fanout_q}");
    assert!(fanout_q.contains("{\"x-expires\",600000}"), "{fanout_q}");
    let line = support::listed(
        &[
            "list_consumers",
            "-q",
            "--no-table-headers",
            "queue_name",
            "prefetch_count",
            "arguments",
        ],
        &topic,
    )
    .await
    .expect("consumer of the topic queue");
    assert!(line.contains("\t7\t"), "{line}");

    server.stop().await.unwrap();
    server.wait().await.unwrap();
    support::rabbitmqctl(&["delete_queue", &topic]);
    support::rabbitmqctl(&["delete_queue", &format!("{topic}.s1")]);
    transport.cleanup().await;
    support::delete_exchange(&support::amqp_url(), &exchange).await;
}

/// `enable_cancel_on_failover` puts `x-cancel-on-ha-failover` on the consumers of
/// classic queues.
#[tokio::test]
async fn cancel_on_failover_reaches_the_consumers() {
    logs();
    let transport = support::transport_with(
        "[oslo_messaging_rabbit]\nenable_cancel_on_failover = true\n",
        "",
    )
    .await;
    let topic = support::unique("cancel");
    let server = support::echo_server(&transport, &topic).await;
    let line = support::listed(
        &[
            "list_consumers",
            "-q",
            "--no-table-headers",
            "queue_name",
            "arguments",
        ],
        &topic,
    )
    .await
    .expect("consumer of the topic queue");
    assert!(line.contains("x-cancel-on-ha-failover"), "{line}");
    finish(server, transport).await;
}

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

/// A multi-host URL whose first node is down: the driver moves on to the next.
#[tokio::test]
async fn fails_over_to_a_live_node() {
    logs();
    support::require_broker().await;
    let url = "rabbit://guest:guest@127.0.0.1:1,guest:guest@127.0.0.1:5672/";
    let config = messaging_core::Config::from_ini_str(
        "[oslo_messaging_rabbit]\nkombu_failover_strategy = round-robin\n",
    )
    .unwrap();
    let transport = support::registry().transport(url, &config).await.unwrap();
    let topic = support::unique("failover");
    let server = support::echo_server(&transport, &topic).await;
    let client = RpcClient::new(&transport, Target::topic(topic.clone()));
    assert_eq!(echo(&client, json!(7)).await.unwrap(), json!(7));
    finish(server, transport).await;
}

/// Wrong credentials, an unreachable node: the errors, the logs and `Debug` name the
/// nodes but never the password.
#[tokio::test]
async fn passwords_stay_out_of_errors_logs_and_debug() {
    logs();
    support::require_broker().await;
    let secret = "Zq9-not-the-password-XYZ";
    let config = messaging_core::Config::from_ini_str(
        "[oslo_messaging_rabbit]\nrabbit_retry_interval = 1\nrabbit_login_method = PLAIN\n",
    )
    .unwrap();
    for url in [
        format!("rabbit://guest:{secret}@127.0.0.1:5672/"),
        format!("rabbit://guest:{secret}@127.0.0.1:1/"),
    ] {
        let transport = support::registry().transport(&url, &config).await.unwrap();
        let debug = format!("{transport:?} {:?}", transport.driver().name());
        assert!(!debug.contains(secret), "{debug}");
        let client = RpcClient::new(&transport, Target::topic("nobody"))
            .retry(Retry::Times(1))
            .timeout(Duration::from_secs(2));
        let err = client
            .cast(&Context::new(), "echo", json!({}))
            .await
            .unwrap_err();
        if url.contains(":5672/") {
            // Refused credentials fail at once, naming the user and the node.
            assert!(matches!(err, Error::Transport(_)), "{err:?}");
            assert!(
                err.to_string()
                    .contains("refused the login of user \"guest\""),
                "{err}"
            );
        } else {
            assert!(matches!(err, Error::DeliveryFailure(_)), "{err:?}");
        }
        let text = format!("{err} {err:?}");
        assert!(!text.contains(secret), "{text}");
        assert!(
            text.contains("127.0.0.1:"),
            "the error names the node: {text}"
        );
        transport.cleanup().await;
    }
    let logged = log_text();
    assert!(logged.contains("cannot connect to RabbitMQ"), "{logged}");
    assert!(!logged.contains(secret), "a log line shows the password");
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

/// A call to a broker that cannot be reached, with the default unlimited `retry`,
/// ends when its timeout does, saying so, instead of connecting forever.
#[tokio::test]
async fn a_call_to_an_unreachable_broker_ends_at_its_timeout() {
    // Nothing listens on port 1 of the loopback: every connection attempt is refused.
    let transport = support::registry()
        .transport(
            "rabbit://guest:guest@127.0.0.1:1/",
            &messaging_core::Config::from_ini_str(
                "[oslo_messaging_rabbit]\nrabbit_retry_interval = 1\nrabbit_interval_max = 1\n",
            )
            .unwrap(),
        )
        .await
        .expect("the transport connects lazily");
    let client =
        RpcClient::new(&transport, Target::topic("nowhere")).timeout(Duration::from_secs(3));
    let started = std::time::Instant::now();
    let outcome = echo(&client, json!("lost")).await;
    let took = started.elapsed();
    assert!(
        matches!(&outcome, Err(Error::Timeout(m)) if m.contains("127.0.0.1:1")),
        "{outcome:?}"
    );
    // The bound is the call's timeout; connection attempts in flight end within a second.
    assert!(took < Duration::from_secs(6), "the call took {took:?}");
    transport.cleanup().await;
}

/// `rabbit_ha_queues` on RabbitMQ 4, which has no classic queue mirroring, is logged as
/// having no effect; on RabbitMQ 3 nothing is said.
#[tokio::test]
async fn rabbit_ha_queues_is_said_to_do_nothing_on_rabbitmq_4() {
    logs();
    let version = support::rabbitmqctl(&["version"]);
    let major: u32 = version
        .trim()
        .split(['.', '-'])
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("a broker version: {version:?}"));
    let transport =
        support::transport_with("[oslo_messaging_rabbit]\nrabbit_ha_queues = true\n", "").await;
    let topic = support::unique("ha");
    let server = support::echo_server(&transport, &topic).await;
    // The version is read in the background, within 5 s of the first connection.
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    let needle = "rabbit_ha_queues has no effect on RabbitMQ";
    while !log_text().contains(needle) && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        log_text().contains(needle),
        major >= 4,
        "RabbitMQ {}",
        version.trim()
    );
    finish(server, transport).await;
}
