//! RabbitMQ 4 configured as 4.3 behaves by default (`scripts/services rabbit4`: RabbitMQ
//! 4.0 with `deprecated_features.permit.transient_nonexcl_queues = false`), at
//! `RABBIT4_URL` (default `rabbit://guest:guest@127.0.0.1:5674/`).
//!
//! Such a broker refuses a transient queue that is not exclusive, and closes the whole
//! connection to say so. oslo declares its reply and fanout queues that way; the driver
//! then declares them exclusive to their connection (declared again on every reconnect).

mod support;

use std::time::Duration;

use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use messaging_core::{
    Config, Context, NotificationListener, NotificationResult, Notifier, Priority, RpcClient,
    RpcServer, Target, Transport,
};
use serde_json::{Value, json};

/// The RabbitMQ 4 broker of the tests.
fn url() -> String {
    std::env::var("RABBIT4_URL").unwrap_or_else(|_| "rabbit://guest:guest@127.0.0.1:5674/".into())
}

/// The same broker as lapin wants it.
fn amqp_url() -> String {
    std::env::var("AMQP4_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5674/%2f".into())
}

/// A transport to the RabbitMQ 4 broker; panics, naming the script that starts it,
/// when it does not answer.
async fn transport(ini: &str) -> Transport {
    let reachable = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect("127.0.0.1:5674"),
    )
    .await
    .is_ok_and(|r| r.is_ok())
        || std::env::var("RABBIT4_URL").is_ok();
    assert!(
        reachable,
        "RabbitMQ 4 is not reachable at 127.0.0.1:5674: start it with `scripts/services rabbit4` \
         (or set RABBIT4_URL)"
    );
    support::registry()
        .transport(
            &url(),
            &Config::from_ini_str(ini).expect("test configuration"),
        )
        .await
        .expect("rabbit transport")
}

/// Whether queue `name` exists and is exclusive to another connection: a passive
/// declare from a connection of our own is refused with RESOURCE_LOCKED.
async fn locked_to_another_connection(name: &str) -> bool {
    let connection =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
            .await
            .expect("raw lapin connection to RabbitMQ 4");
    let channel = connection.create_channel().await.unwrap();
    let outcome = channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    let _ = connection.close(200, "OK".into()).await;
    match outcome {
        Ok(_) => false,
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.contains("RESOURCE_LOCKED") || text.contains("NOT_FOUND"),
                "passive declare of {name}: {text}"
            );
            text.contains("RESOURCE_LOCKED")
        }
    }
}

/// With durable shared queues (`amqp_durable_queues`, which every service of a mixed
/// deployment must agree on), calls, directed calls and fanout casts work with the
/// default transient reply and fanout queues: the driver declares them exclusive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_queues_are_exclusive_where_transient_ones_are_refused() {
    let (ini, exchange) = support::own_exchange(
        "rabbit4x",
        "[oslo_messaging_rabbit]\namqp_durable_queues = true\n",
    );
    let server_transport = transport(&ini).await;
    let topic = support::unique("rabbit4");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let endpoint = support::echo_endpoint().method("note", move |_c: Context, a: Value| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(a);
            Ok::<_, messaging_core::RemoteError>(Value::Null)
        }
    });
    let server = RpcServer::new(&server_transport, Target::topic(topic.clone()).server("s1"))
        .endpoint(endpoint)
        .start()
        .await
        .expect("the server starts on RabbitMQ 4 with default transient queues");
    let client_transport = transport(&ini).await;
    let client = RpcClient::new(&client_transport, Target::topic(topic.clone()))
        .timeout(Duration::from_secs(10));
    let answer: Value = client
        .call(&Context::new(), "echo", json!({"data": "four"}))
        .await
        .expect("a call on RabbitMQ 4");
    assert_eq!(answer, json!("four"));
    let answer: Value = client
        .prepare()
        .server("s1")
        .call(&Context::new(), "echo", json!({"data": "directed"}))
        .await
        .expect("a directed call on RabbitMQ 4");
    assert_eq!(answer, json!("directed"));
    client
        .prepare()
        .fanout(true)
        .cast(&Context::new(), "note", json!({"n": 1}))
        .await
        .expect("a fanout cast on RabbitMQ 4");
    let noted = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the fanout cast arrives")
        .expect("the server runs");
    assert_eq!(noted, json!({"n": 1}));

    // The queues only this process reads are exclusive to their connections.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/services");
    let queues = support::command(
        script,
        &[
            "rabbit4-ctl",
            "list_queues",
            "--no-table-headers",
            "name",
            "exclusive",
        ],
        None,
    );
    let private: Vec<(&str, &str)> = queues
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(name, _)| {
            name.starts_with("reply_") || name.starts_with(&format!("{topic}_fanout_"))
        })
        .collect();
    let fanout = private
        .iter()
        .find(|(name, _)| name.starts_with(&format!("{topic}_fanout_")))
        .expect("the server's fanout queue");
    assert_eq!(fanout.1, "true", "{queues}");
    assert!(locked_to_another_connection(fanout.0).await);

    server.stop().await;
    server.wait().await.unwrap();
    server_transport.cleanup().await;
    client_transport.cleanup().await;
    support::delete_exchange(&amqp_url(), &exchange).await;
}

/// A declaration that no other form rescues (a quorum queue cannot be auto-delete) ends
/// the server's start and the notifier's send at once, naming the options that decide
/// how queues are declared; neither retries it forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_nothing_works_around_fails_at_once_naming_the_options() {
    let (ini, exchange) = support::own_exchange(
        "refused4x",
        "[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\namqp_auto_delete = true\n",
    );
    let transport = transport(&ini).await;
    let topic = support::unique("refused4");
    // A bound against hanging only: the refusal comes in milliseconds.
    let bound = Duration::from_secs(60);
    let started = tokio::time::timeout(
        bound,
        RpcServer::new(&transport, Target::topic(topic.clone()).server("s1"))
            .endpoint(support::echo_endpoint())
            .start(),
    )
    .await
    .expect("the server's start ends instead of retrying");
    let error = started
        .err()
        .expect("the broker refuses the queue")
        .to_string();
    for needle in ["auto-delete", "rabbit_quorum_queue", "amqp_auto_delete"] {
        assert!(error.contains(needle), "{needle:?} missing from: {error}");
    }
    let notifier = Notifier::new(&transport, "compute.host1").topics([topic.as_str()]);
    let sent = tokio::time::timeout(
        bound,
        notifier.try_notify(&Context::new(), "e", Priority::Info, json!({})),
    )
    .await
    .expect("the notification's send ends instead of retrying");
    let error = sent
        .expect_err("the broker refuses the notification queue")
        .to_string();
    for needle in ["auto-delete", "rabbit_quorum_queue", "amqp_auto_delete"] {
        assert!(error.contains(needle), "{needle:?} missing from: {error}");
    }
    transport.cleanup().await;
    support::delete_exchange(&amqp_url(), &exchange).await;
}

/// `rabbit_quorum_delivery_limit` reaches the broker: a notification its listener
/// requeues every time is delivered `1 + limit` times, then dropped by the broker
/// (RabbitMQ 4 applies a limit of 20 when none is set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_queue_drops_a_notification_requeued_past_its_delivery_limit() {
    let (ini, exchange) = support::own_exchange(
        "limit4x",
        "[oslo_messaging_rabbit]\nrabbit_quorum_queue = true\nrabbit_quorum_delivery_limit = 2\n",
    );
    let transport = transport(&ini).await;
    let topic = support::unique("limit4");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let listener = NotificationListener::new(&transport, [Target::topic(topic.clone())])
        .allow_requeue(true)
        .on(Priority::Info, move |n: messaging_core::Notification| {
            let _ = tx.send(n.payload);
            std::future::ready(NotificationResult::Requeue)
        })
        .start()
        .await
        .expect("the listener starts");
    let notifier = Notifier::new(&transport, "compute.host1").topics([topic.as_str()]);
    notifier
        .try_notify(&Context::new(), "e", Priority::Info, json!({"n": 1}))
        .await
        .expect("sent");
    let mut deliveries = 0;
    // Every delivery comes in milliseconds; two quiet seconds mean the broker gave up.
    while let Ok(Some(payload)) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
        assert_eq!(payload, json!({"n": 1}));
        deliveries += 1;
        assert!(deliveries <= 20, "the limit is not applied");
    }
    assert_eq!(deliveries, 3, "first delivery plus two requeued ones");
    let queue = support::rabbitmqctl_on(
        &[
            "list_queues",
            "--no-table-headers",
            "-q",
            "name",
            "messages",
        ],
        script(),
    );
    let line = queue
        .lines()
        .find(|l| l.starts_with(&format!("{topic}.info\t")))
        .unwrap_or_else(|| panic!("the notification queue: {queue}"));
    assert_eq!(line, format!("{topic}.info\t0"), "the broker dropped it");
    listener.stop().await;
    listener.wait().await.expect("the listener stops");
    let _ = support::rabbitmqctl_on(&["delete_queue", &format!("{topic}.info")], script());
    transport.cleanup().await;
    support::delete_exchange(&amqp_url(), &exchange).await;
}

/// The services script, whose `rabbit4-ctl` runs rabbitmqctl against RabbitMQ 4.
fn script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/services")
}
