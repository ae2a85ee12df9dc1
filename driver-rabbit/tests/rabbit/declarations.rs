//! What the driver declares on the broker: queue and exchange flags and arguments as
//! oslo's, the options that change them, consumer arguments, and options that have no
//! effect on the broker in use.

use super::*;

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

    server.stop().await;
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

    server.stop().await;
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

/// `rabbitmqctl list_queues` lines without the `x-queue-type` RabbitMQ 4 lists for
/// classic queues declared without one.
fn without_classic_type(line: &str) -> String {
    line.replace(",{\"x-queue-type\",\"classic\"}", "")
        .replace("{\"x-queue-type\",\"classic\"},", "")
        .replace("{\"x-queue-type\",\"classic\"}", "")
}
