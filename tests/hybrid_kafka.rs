//! oslo's functional scenario02 end to end, across languages: RPC over RabbitMQ and
//! notifications over Kafka, configured from one oslo-style INI file that a Rust
//! service and a Python oslo.messaging service both read.
//!
//! Each service runs an RPC server (whose `emit` method sends a notification), a
//! notifier and a notification listener (in a pool of its own) on the configured
//! notification topic, and calls the other. Python calls Rust over RabbitMQ and receives
//! the notification the Rust service sends over Kafka; Rust calls Python and receives
//! Python's. Needs RabbitMQ (`RABBIT_URL`), the Kafka broker (`KAFKA_URL`) and the
//! Python peer's virtualenv with confluent-kafka, all from `scripts/services`.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Peer, Seen, drain, recording_endpoint, recv, unique};
use messaging::notify::{Notification, NotificationListener, Notifier, Priority};
use messaging::{Config, Context, RemoteError, RpcClient, RpcServer, Target, Transport};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// The one configuration file of both services; removed when dropped.
struct IniFile {
    path: PathBuf,
}

impl IniFile {
    fn write(text: &str) -> IniFile {
        let path = std::env::temp_dir().join(format!("{}.ini", unique("hybrid")));
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        IniFile { path }
    }
}

impl Drop for IniFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// scenario02's configuration: RPC on RabbitMQ, notifications (messagingv2) on Kafka.
/// `fetch_wait_max_ms` is the Rust driver's extension (tansu answers a fetch only when
/// it expires); oslo.config ignores options it has not registered, so Python reads the
/// same file (the peer sets the same wait for oslo's consumer).
fn scenario02_ini(topic: &str) -> String {
    format!(
        "[DEFAULT]\n\
         transport_url = {rabbit}\n\
         rpc_response_timeout = 30\n\
         \n\
         [oslo_messaging_notifications]\n\
         driver = messagingv2\n\
         transport_url = {kafka}\n\
         topics = {topic}\n\
         \n\
         [oslo_messaging_kafka]\n\
         fetch_wait_max_ms = {wait}\n\
         delete_reply_topics = false\n",
        rabbit = common::rabbit_url(),
        kafka = common::kafka_url(),
        wait = common::KAFKA_FETCH_WAIT_MS,
    )
}

#[derive(Deserialize)]
struct Emit {
    event_type: String,
    payload: Value,
    #[serde(default)]
    priority: Option<String>,
}

/// The Rust service: what an OpenStack service built on this crate does at start.
struct RustService {
    rpc: Transport,
    server: RpcServer,
    listener: NotificationListener,
}

impl RustService {
    async fn start(
        cfg: &Config,
        topic: &str,
        name: &str,
        pool: &str,
        requests: mpsc::UnboundedSender<Seen>,
        notifications: mpsc::UnboundedSender<Notification>,
    ) -> RustService {
        let drivers = messaging::registry();
        let rpc = drivers.rpc_transport(cfg).await.unwrap_or_else(|e| {
            panic!("the RPC transport ([DEFAULT] transport_url) does not open: {e}")
        });
        let events = drivers
            .notification_transport(cfg)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the notification transport ([oslo_messaging_notifications] transport_url) \
                 does not open: {e}\n(the kafka driver must be registered in \
                 messaging::registry(); the broker is started by scripts/services)"
                )
            });
        assert_eq!(rpc.url().driver(), "rabbit");
        assert_eq!(events.url().driver(), "kafka");

        let notifier = Notifier::from_config(&events, format!("compute.{name}"))
            .expect("[oslo_messaging_notifications] driver = messagingv2");
        let (emitter, server_name) = (requests.clone(), name.to_string());
        let endpoint = recording_endpoint(name, requests).method(
            "emit",
            move |ctx: Context,
                  Emit {
                      event_type,
                      payload,
                      priority,
                  }: Emit| {
                let notifier = notifier.clone();
                let _ = emitter.send(Seen {
                    server: server_name.clone(),
                    method: "emit".into(),
                    args: json!({"event_type": event_type, "payload": payload}),
                    ctx: ctx.clone(),
                });
                async move {
                    let priority: Priority = priority
                        .as_deref()
                        .unwrap_or("info")
                        .parse()
                        .map_err(|e| RemoteError::value_error(format!("{e}")))?;
                    notifier
                        .try_notify(&ctx, &event_type, priority, payload)
                        .await
                        .map_err(|e| {
                            RemoteError::new(
                                "MessageDeliveryFailure",
                                "oslo_messaging.exceptions",
                                e.to_string(),
                            )
                        })?;
                    Ok::<_, RemoteError>(json!({ "emitted": event_type }))
                }
            },
        );
        let server = RpcServer::new(&rpc, Target::topic(topic).server(name))
            .endpoint(endpoint)
            .start()
            .await
            .unwrap_or_else(|e| panic!("the Rust RPC server does not start: {e}"));

        let targets: Vec<Target> = cfg
            .notifications
            .topics
            .iter()
            .map(|t| Target::topic(t.as_str()))
            .collect();
        let mut listener = NotificationListener::new(&events, targets).pool(pool);
        for priority in Priority::ALL {
            listener = listener.on(priority, common::forward(&notifications));
        }
        let listener = listener
            .start()
            .await
            .unwrap_or_else(|e| panic!("the Rust listener on Kafka does not start: {e}"));
        RustService {
            rpc,
            server,
            listener,
        }
    }

    async fn stop(self) {
        common::stop_listener(self.listener).await;
        self.server.stop().await;
        self.server
            .wait_timeout(Duration::from_secs(30))
            .await
            .expect("the server drained in time");
    }
}

/// The first line with `key`, from what was read before or from the peer.
async fn line_with(peer: &mut Peer, backlog: &mut Vec<Value>, key: &str) -> Value {
    if let Some(i) = backlog.iter().position(|l| l.get(key).is_some()) {
        return backlog.remove(i);
    }
    peer.next_with(key, backlog).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario02_rust_and_python_services_on_rabbit_rpc_and_kafka_notifications() {
    common::require_broker(&common::rabbit_url()).await;
    common::require_kafka(&common::kafka_url()).await;
    common::require_python();
    common::require_python_module("confluent_kafka").await;
    let _slot = common::slot().await;

    let topic = unique("scenario02-events");
    let ini = IniFile::write(&scenario02_ini(&topic));
    let cfg = Config::from_ini_file(&ini.path).expect("the scenario02 INI file loads");
    assert_eq!(cfg.notifications.topics, vec![topic.clone()]);

    // The Rust service.
    let (rs_topic, py_topic) = (unique("scenario02-rs"), unique("scenario02-py"));
    let (req_tx, mut req_rx) = mpsc::unbounded_channel();
    let (note_tx, mut note_rx) = mpsc::unbounded_channel();
    let rust = RustService::start(
        &cfg,
        &rs_topic,
        "rs1",
        &unique("rust-service"),
        req_tx,
        note_tx,
    )
    .await;

    // The Python service, from the same file.
    let path = ini.path.display().to_string();
    let mut py = Peer::start(common::args([
        "service",
        "--config-file",
        &path,
        "--topic",
        &py_topic,
        "--server",
        "py1",
        "--publisher-id",
        "compute.py1",
        "--pool",
        &unique("python-service"),
    ]))
    .await;
    let mut backlog = Vec::new();

    // Python calls Rust over RabbitMQ ...
    py.send(&json!({"call": "add", "topic": rs_topic, "args": {"a": 20, "b": 22}}).to_string())
        .await;
    let reply = line_with(&mut py, &mut backlog, "reply").await;
    assert_eq!(reply["reply"], 42, "{reply}");
    let seen = recv(&mut req_rx, "the Rust server's add").await;
    assert_eq!((seen.method.as_str(), seen.server.as_str()), ("add", "rs1"));

    // ... and the Rust service's notification reaches Python over Kafka.
    let call = json!({
        "call": "emit",
        "topic": rs_topic,
        "args": {"event_type": "compute.instance.create.end", "payload": {"id": 42}},
        "context": {"user": "alice", "request_id": "req-s02-1"},
    });
    py.send(&call.to_string()).await;
    let reply = line_with(&mut py, &mut backlog, "reply").await;
    assert_eq!(
        reply["reply"],
        json!({"emitted": "compute.instance.create.end"}),
        "{reply}"
    );
    let seen = recv(&mut req_rx, "the Rust server's emit").await;
    assert_eq!(seen.ctx.get("user"), Some(&json!("alice")));
    let got = line_with(&mut py, &mut backlog, "notification").await;
    let n = &got["notification"];
    assert_eq!(n["priority"], "info", "{got}");
    assert_eq!(n["publisher_id"], "compute.rs1", "{got}");
    assert_eq!(n["event_type"], "compute.instance.create.end", "{got}");
    assert_eq!(n["payload"], json!({"id": 42}), "{got}");
    assert_eq!(n["ctxt"]["user"], "alice", "the caller's context: {got}");
    assert_eq!(n["ctxt"]["request_id"], "req-s02-1", "{got}");
    // The Rust service's own listener (another pool) gets it too.
    let own = recv(&mut note_rx, "the Rust service's own notification").await;
    assert_eq!(own.event_type, "compute.instance.create.end");

    // Rust calls Python over RabbitMQ ...
    let client =
        RpcClient::new(&rust.rpc, Target::topic(&py_topic)).timeout(Duration::from_secs(30));
    let sum: i64 = client
        .call(&Context::new(), "add", json!({"a": 1, "b": 2}))
        .await
        .expect("Rust calls Python");
    assert_eq!(sum, 3);
    let ctx = Context::new()
        .with("user", "bob")
        .with("request_id", "req-s02-2");
    let emitted: Value = client
        .call(
            &ctx,
            "emit",
            json!({"event_type": "image.upload", "payload": {"size": 3}, "priority": "warn"}),
        )
        .await
        .expect("Rust calls Python's emit");
    assert_eq!(emitted, json!({"emitted": "image.upload"}));
    let request = line_with(&mut py, &mut backlog, "method").await;
    assert_eq!(request["method"], "add", "{request}");
    let request = line_with(&mut py, &mut backlog, "method").await;
    assert_eq!(request["method"], "emit", "{request}");
    assert_eq!(request["ctxt"]["user"], "bob", "{request}");

    // ... and Python's notification reaches the Rust service over Kafka.
    let n = recv(&mut note_rx, "Python's notification").await;
    assert_eq!(n.priority, Priority::Warn, "{n:?}");
    assert_eq!(n.publisher_id, "compute.py1", "{n:?}");
    assert_eq!(n.event_type, "image.upload", "{n:?}");
    assert_eq!(n.payload, json!({"size": 3}), "{n:?}");
    assert_eq!(n.context.get("user"), Some(&json!("bob")), "{n:?}");
    assert_eq!(n.context.get("request_id"), Some(&json!("req-s02-2")));

    // Each pool saw each notification once: Python its own one besides Rust's.
    let own = line_with(&mut py, &mut backlog, "notification").await;
    assert_eq!(own["notification"]["event_type"], "image.upload", "{own}");
    let more = drain(&mut note_rx, common::QUIET_PERIOD).await;
    assert!(more.is_empty(), "nothing else reached Rust: {more:#?}");
    backlog.extend(py.drain(common::QUIET_PERIOD).await);
    assert!(
        backlog.iter().all(|l| l.get("notification").is_none()),
        "nothing else reached Python: {backlog:?}"
    );

    py.stop().await;
    rust.stop().await;
}
