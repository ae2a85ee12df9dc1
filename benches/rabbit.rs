//! RPC and notification throughput and latency on a local RabbitMQ: this project, raw
//! lapin doing the same oslo exchange by hand, and Python oslo.messaging (client and
//! server on the same broker), in one run.
//!
//! ```text
//! cargo bench --bench rabbit                                    # full run, Markdown table
//! cargo bench --bench rabbit -- --payload 100 --seconds 5 --only ours,raw
//! cargo bench --bench rabbit -- --no-python --rows calls-1,casts-256
//! ```
//!
//! Rows: calls one at a time, calls from 64 concurrent callers, casts and notifications
//! from one caller and from 256 concurrent callers, each with a 100-byte and a 3 KB JSON
//! string argument. Each row runs for `--seconds` (3) after a one-second warm-up and
//! reports throughput and p50/p99 latency per call (or per publish, for casts and
//! notifications, which are measured on the sending side; the consumer must have
//! drained everything before the next row starts).
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) every row runs a handful of
//! messages as a smoke test (the Python peer, slow to start, for the first payload size
//! only). The broker is `--rabbit-url` (else `RABBIT_URL`; oslo form
//! `rabbit://guest:guest@127.0.0.1:5672/` or lapin form `amqp://…/%2f`; the other form
//! is derived, or taken from `AMQP_URL`), its version read with `--rabbitmqctl` (else
//! `RABBITMQCTL`, else `rabbitmqctl`). On RabbitMQ 4 (the one `scripts/services rabbit4`
//! starts):
//!
//! ```text
//! cargo bench --bench rabbit -- --no-python --rabbit-url rabbit://guest:guest@127.0.0.1:5674/ \
//!     --rabbitmqctl "scripts/services rabbit4-ctl"
//! ```
//!
//! The Python rows need `<repo>/.venv` (or `OSLO_PEER_PYTHON`) with oslo.messaging,
//! which `scripts/services` creates; without it the program fails unless given
//! `--no-python`.

mod common;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{
    CALL_TIMEOUT, Cell, Data, Echo, Measured, Only, Plan, Profile, Table, cells, delete_queues,
    drain, drive, err, python, side,
};

/// What differs from the Kafka benchmark in what they share.
static PROFILE: Profile = Profile {
    name: "rabbit",
    about: "RPC and notification throughput and latency over RabbitMQ: ours, raw lapin and \
            Python oslo.messaging",
    payloads: &[100, 3072],
    seconds: 3.0,
    drain_timeout: Duration::from_secs(120),
    setup_timeout: Duration::from_secs(60),
    counted: "messages",
};
/// oslo's default `control_exchange`, used by every implementation.
const EXCHANGE: &str = "openstack";

/// Whether the broker refuses transient non-exclusive queues (RabbitMQ 4.3): raw lapin
/// then declares as the driver does there, topic queues durable and its reply queue
/// exclusive. Found out once, before the first row.
static TRANSIENT_REFUSED: AtomicBool = AtomicBool::new(false);

// ---------------------------------------------------------------------------------
// Scenarios and options.
// ---------------------------------------------------------------------------------

/// What a row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Call,
    Cast,
    Notify,
}

/// One scenario: a kind of message and how many concurrent senders.
#[derive(Debug, Clone, Copy)]
struct Row {
    kind: Kind,
    workers: usize,
}

impl Row {
    const ALL: [Row; 6] = [
        Row::new(Kind::Call, 1),
        Row::new(Kind::Call, 64),
        Row::new(Kind::Cast, 1),
        Row::new(Kind::Cast, 256),
        Row::new(Kind::Notify, 1),
        Row::new(Kind::Notify, 256),
    ];

    const fn new(kind: Kind, workers: usize) -> Self {
        Row { kind, workers }
    }

    /// The key the Python peer uses for this row.
    fn key(&self) -> String {
        let kind = match self.kind {
            Kind::Call => "calls",
            Kind::Cast => "casts",
            Kind::Notify => "notify",
        };
        format!("{kind}-{}", self.workers)
    }

    fn label(&self) -> String {
        let callers = if self.workers == 1 {
            "1 caller".to_string()
        } else {
            format!("{} concurrent callers", self.workers)
        };
        match self.kind {
            Kind::Call => format!("calls, {callers}"),
            Kind::Cast => format!("casts, {callers}"),
            Kind::Notify => format!("notifications, {callers}"),
        }
    }

    /// The lowest acceptable ours/raw throughput ratio.
    fn target(&self) -> f64 {
        match (self.kind, self.workers) {
            (Kind::Call, 1) => 1.0,
            (Kind::Call, _) => 0.9,
            (_, 1) => 0.9,
            _ => 0.8,
        }
    }
}

/// Command-line options: those every benchmark has, and which broker.
type Options = common::Options<Broker>;

/// The broker under test, from `--rabbit-url` and `--rabbitmqctl` (else `RABBIT_URL`
/// and `RABBITMQCTL`).
#[derive(Debug, clap::Args)]
struct Broker {
    /// The broker, in oslo's or lapin's URL form [default: `RABBIT_URL`, else
    /// rabbit://guest:guest@127.0.0.1:5672/].
    #[arg(long = "rabbit-url", value_name = "URL")]
    url: Option<String>,
    /// The command that reports the broker's version, words separated by spaces
    /// [default: `RABBITMQCTL`, else rabbitmqctl].
    #[arg(long = "rabbitmqctl", value_name = "COMMAND")]
    ctl: Option<String>,
}

fn parse_options() -> Options {
    let keys: Vec<String> = Row::ALL.iter().map(Row::key).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    Options::parse(&PROFILE, &keys, |_, _| {})
}

/// The broker addresses, and what every row of one payload size shares.
#[derive(Debug, Clone)]
struct Bench {
    /// oslo form, for ours and Python.
    oslo_url: String,
    /// lapin form.
    amqp_url: String,
    plan: Plan,
    /// The JSON string argument.
    payload: Arc<str>,
    /// Makes queue names unique to this run.
    run_id: String,
}

impl Bench {
    /// A topic (and so queue) name unique to this run, implementation and row.
    fn topic(&self, implementation: &str, row: Row) -> String {
        common::topic(
            self.plan,
            &self.run_id,
            implementation,
            &row.key(),
            self.payload.len(),
        )
    }

    /// The Python peer's topic.
    fn python_topic(&self) -> String {
        format!("bench_rabbit_{}_py_{}", self.run_id, self.payload.len())
    }
}

// ---------------------------------------------------------------------------------
// Ours: the messaging facade on the rabbit driver.
// ---------------------------------------------------------------------------------

mod ours {
    use super::*;
    use messaging::notify::{Notification, NotificationListener, Notifier, Priority};
    use messaging::{Config, Context, Endpoint, RemoteError, RpcClient, RpcServer, Target};

    /// A server transport and a client transport, as two processes would have.
    async fn transports(b: &Bench) -> Result<(messaging::Transport, messaging::Transport), String> {
        let registry = messaging::registry();
        let cfg = Config::default();
        let server = registry.transport(&b.oslo_url, &cfg).await.map_err(err)?;
        let client = registry.transport(&b.oslo_url, &cfg).await.map_err(err)?;
        Ok((server, client))
    }

    /// Calls or casts `echo` on an `RpcServer`.
    pub async fn rpc(b: &Bench, row: Row) -> Result<Measured, String> {
        let topic = b.topic("ours", row);
        let (server_t, client_t) = transports(b).await?;
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let api = Endpoint::new().method("echo", move |_ctx: Context, Echo { data }| {
            counter.fetch_add(1, Ordering::Relaxed);
            async move { Ok::<_, RemoteError>(data) }
        });
        let server = RpcServer::new(&server_t, Target::topic(topic.clone()).server("bench"))
            .endpoint(api)
            .start()
            .await
            .map_err(err)?;
        let client = RpcClient::new(&client_t, Target::topic(topic.clone())).timeout(CALL_TIMEOUT);
        let sent = Arc::new(AtomicU64::new(0));
        let state = Arc::new((client, b.payload.clone(), sent.clone()));
        let kind = row.kind;
        let result = drive(b.plan, row.workers, move || {
            let state = state.clone();
            async move {
                let (client, payload, sent) = &*state;
                if kind == Kind::Call {
                    common::echo_call(client, payload).await?;
                } else {
                    client
                        .cast(&Context::new(), "echo", Data { data: payload })
                        .await
                        .map_err(err)?;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
        })
        .await
        .0;
        let drained = match (&result, kind) {
            (Ok(_), Kind::Cast) => drain(b.plan, &received, sent.load(Ordering::Relaxed)).await,
            _ => Ok(()),
        };
        common::finish_row(&server, &client_t, &server_t).await;
        delete_queues(
            b.plan,
            &b.amqp_url,
            &[topic.clone(), format!("{topic}.bench")],
        )
        .await;
        drained?;
        result
    }

    /// Notifications from a `Notifier` to a `NotificationListener`.
    pub async fn notify(b: &Bench, row: Row) -> Result<Measured, String> {
        let topic = b.topic("ours", row);
        let (listener_t, notifier_t) = transports(b).await?;
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let listener = NotificationListener::new(&listener_t, [Target::topic(topic.clone())])
            .on(Priority::Info, move |_n: Notification| {
                counter.fetch_add(1, Ordering::Relaxed);
                async {}
            })
            .start()
            .await
            .map_err(err)?;
        let notifier = Notifier::new(&notifier_t, "bench.host").topics([topic.clone()]);
        let sent = Arc::new(AtomicU64::new(0));
        let state = Arc::new((notifier, b.payload.clone(), sent.clone()));
        let result = drive(b.plan, row.workers, move || {
            let state = state.clone();
            async move {
                let (notifier, payload, sent) = &*state;
                common::notify(notifier, Data { data: payload }).await?;
                sent.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        })
        .await
        .0;
        let drained = match &result {
            Ok(_) => drain(b.plan, &received, sent.load(Ordering::Relaxed)).await,
            Err(_) => Ok(()),
        };
        listener.stop().await;
        let _ = listener.wait().await;
        notifier_t.cleanup().await;
        listener_t.cleanup().await;
        delete_queues(b.plan, &b.amqp_url, &[format!("{topic}.info")]).await;
        drained?;
        result
    }
}

// ---------------------------------------------------------------------------------
// Raw lapin: the same oslo topology, envelope and confirms, by hand.
// ---------------------------------------------------------------------------------

mod raw {
    use super::*;
    use futures::StreamExt;
    use lapin::options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
        ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    };
    use lapin::types::{AMQPValue, FieldTable};
    use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
    use serde_json::{Value, json};
    use std::sync::Mutex;
    use tokio::sync::oneshot;

    /// oslo's `x-expires` of reply queues (`rabbit_transient_queues_ttl`, in ms).
    const REPLY_QUEUE_EXPIRES_MS: i32 = 1_800_000;

    fn hex_id() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// A connection and the channels opened on it, closed together. lapin closes a
    /// channel when its last handle drops; such a close racing the connection's close
    /// fails the connection (an error log, a reset socket, once a hung run), so the
    /// handles live until the connection is closed.
    struct Link {
        conn: Connection,
        channels: Vec<Channel>,
    }

    impl Link {
        async fn open(amqp_url: &str) -> Result<Link, String> {
            let conn = Connection::connect(amqp_url, Default::default())
                .await
                .map_err(err)?;
            Ok(Link {
                conn,
                channels: Vec::new(),
            })
        }

        /// A new channel; oslo turns publisher confirms on for every channel.
        async fn channel(&mut self) -> Result<Channel, String> {
            let ch = self.conn.create_channel().await.map_err(err)?;
            ch.confirm_select(ConfirmSelectOptions::default())
                .await
                .map_err(err)?;
            self.channels.push(ch.clone());
            Ok(ch)
        }

        /// Closes the connection, then lets go of the channels.
        async fn close(self) {
            let closing = self.conn.close(200, "bench done".into());
            let _ = tokio::time::timeout(Duration::from_secs(10), closing).await;
            drop(self.channels);
        }
    }

    /// The control exchange (topic, not durable) and a queue bound to it by its name.
    async fn declare(ch: &Channel, queue: &str) -> Result<(), String> {
        ch.exchange_declare(
            EXCHANGE.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(err)?;
        let options = QueueDeclareOptions {
            durable: TRANSIENT_REFUSED.load(Ordering::Relaxed),
            ..Default::default()
        };
        ch.queue_declare(queue.into(), options, FieldTable::default())
            .await
            .map_err(err)?;
        ch.queue_bind(
            queue.into(),
            EXCHANGE.into(),
            queue.into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(err)
    }

    /// kombu's properties: JSON, persistent, priority 0, no headers; calls expire.
    fn properties(expiration: Option<&str>) -> BasicProperties {
        let p = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_content_encoding("utf-8".into())
            .with_delivery_mode(2)
            .with_priority(0)
            .with_headers(FieldTable::default());
        match expiration {
            Some(ms) => p.with_expiration(ms.into()),
            None => p,
        }
    }

    /// The 2.0 envelope around an inner message.
    fn envelope(inner: &Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"oslo.version": "2.0", "oslo.message": inner.to_string()}))
            .unwrap_or_default()
    }

    fn open_envelope(body: &[u8]) -> Result<Value, String> {
        let outer: Value = serde_json::from_slice(body).map_err(err)?;
        let inner = outer
            .get("oslo.message")
            .and_then(Value::as_str)
            .ok_or("no oslo.message in the envelope")?;
        serde_json::from_str(inner).map_err(err)
    }

    /// Publishes and waits for the broker's confirm; a returned message is a failure.
    async fn publish(
        ch: &Channel,
        exchange: &str,
        key: &str,
        mandatory: bool,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<(), String> {
        let confirm = ch
            .basic_publish(
                exchange.into(),
                key.into(),
                BasicPublishOptions {
                    mandatory,
                    ..Default::default()
                },
                body,
                props,
            )
            .await
            .map_err(err)?;
        check(confirm.await)
    }

    fn check(confirmation: lapin::Result<lapin::Confirmation>) -> Result<(), String> {
        let confirmation = confirmation.map_err(err)?;
        if !confirmation.is_ack() {
            return Err("the broker nacked a publish".into());
        }
        match confirmation.take_message() {
            Some(returned) => Err(format!("returned: {}", returned.reply_text)),
            None => Ok(()),
        }
    }

    /// Consumes `queue` and hands each body to `on_message`; with `spawn`, each in its
    /// own task (an RPC server dispatching concurrently), else in order.
    async fn consume<F, Fut>(
        ch: &Channel,
        queue: &str,
        ack_first: bool,
        spawn: bool,
        on_message: F,
    ) -> Result<tokio::task::JoinHandle<()>, String>
    where
        F: Fn(Vec<u8>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut consumer = ch
            .basic_consume(
                queue.into(),
                "1".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(err)?;
        let on_message = Arc::new(on_message);
        Ok(tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let on_message = on_message.clone();
                let work = async move {
                    // RPC servers and reply consumers ack on receipt, listeners after handling.
                    if ack_first {
                        let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                        on_message(delivery.data).await;
                    } else {
                        let acker = delivery.acker.clone();
                        on_message(delivery.data).await;
                        let _ = acker.ack(BasicAckOptions::default()).await;
                    }
                };
                if spawn {
                    tokio::spawn(work);
                } else {
                    work.await;
                }
            }
        }))
    }

    /// A server of `echo` on `topic`: acks, decodes, replies to calls awaiting the
    /// confirm, counts.
    async fn server(
        b: &Bench,
        topic: &str,
        received: Arc<AtomicU64>,
    ) -> Result<(Link, tokio::task::JoinHandle<()>), String> {
        let mut link = Link::open(&b.amqp_url).await?;
        let ch = link.channel().await?;
        declare(&ch, topic).await?;
        let reply_ch = link.channel().await?;
        let task = consume(&ch, topic, true, true, move |body| {
            let reply_ch = reply_ch.clone();
            let received = received.clone();
            async move {
                if let Err(e) = serve_one(&reply_ch, &body).await {
                    eprintln!("raw server: {e}");
                }
                received.fetch_add(1, Ordering::Relaxed);
            }
        })
        .await?;
        Ok((link, task))
    }

    async fn serve_one(reply_ch: &Channel, body: &[u8]) -> Result<(), String> {
        let mut request = open_envelope(body)?;
        let result = request["args"]["data"].take();
        let Some(reply_q) = request.get("_reply_q").and_then(Value::as_str) else {
            return Ok(());
        };
        let reply = json!({
            "result": result, "failure": null, "ending": true,
            "_msg_id": request["_msg_id"], "_unique_id": hex_id(),
        });
        // Replies go through the default exchange, mandatory, as oslo's direct_send.
        publish(
            reply_ch,
            "",
            reply_q,
            true,
            &envelope(&reply),
            properties(None),
        )
        .await
    }

    /// The calling side: a publish channel and a reply queue whose consumer hands each
    /// reply to the caller waiting for its `_msg_id`.
    struct Caller {
        publish: Channel,
        reply_q: String,
        waiters: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>,
        topic: String,
        payload: Arc<str>,
        overlap: bool,
    }

    impl Caller {
        async fn call(&self) -> Result<(), String> {
            let msg_id = hex_id();
            let (tx, rx) = oneshot::channel();
            // Registered before publishing: the reply may beat the confirm.
            self.waiters.lock().map_err(err)?.insert(msg_id.clone(), tx);
            let request = json!({
                "method": "echo", "args": {"data": &*self.payload},
                "_msg_id": msg_id, "_reply_q": self.reply_q, "_timeout": null,
                "_unique_id": hex_id(),
            });
            let expiration = CALL_TIMEOUT.as_millis().to_string();
            let confirm = self
                .publish
                .basic_publish(
                    EXCHANGE.into(),
                    self.topic.as_str().into(),
                    BasicPublishOptions::default(),
                    &envelope(&request),
                    properties(Some(&expiration)),
                )
                .await
                .map_err(err)?;
            let reply = tokio::time::timeout(CALL_TIMEOUT, rx);
            let reply = if self.overlap {
                let (confirmed, reply) = tokio::join!(confirm, reply);
                check(confirmed)?;
                reply
            } else {
                check(confirm.await)?;
                reply.await
            };
            let reply = reply
                .map_err(|_| "call timed out".to_string())?
                .map_err(err)?;
            match reply["result"].as_str() {
                Some(r) if r.len() == self.payload.len() && reply["failure"].is_null() => Ok(()),
                _ => Err(format!("unexpected reply {reply}")),
            }
        }
    }

    /// Calls `echo` on a raw server; `overlap` awaits the request's confirm and the
    /// reply together instead of one after the other.
    pub async fn calls(b: &Bench, row: Row, overlap: bool) -> Result<Measured, String> {
        let topic = b.topic(if overlap { "rawo" } else { "raw" }, row);
        let received = Arc::new(AtomicU64::new(0));
        let (server_link, server_task) = server(b, &topic, received).await?;
        let mut link = Link::open(&b.amqp_url).await?;
        let publish = link.channel().await?;
        let reply_ch = link.channel().await?;
        let reply_q = format!("reply_{}", hex_id());
        let mut args = FieldTable::default();
        args.insert(
            "x-expires".into(),
            AMQPValue::LongInt(REPLY_QUEUE_EXPIRES_MS),
        );
        reply_ch
            .queue_declare(
                reply_q.as_str().into(),
                QueueDeclareOptions {
                    exclusive: TRANSIENT_REFUSED.load(Ordering::Relaxed),
                    ..Default::default()
                },
                args,
            )
            .await
            .map_err(err)?;
        let waiters: Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>> = Arc::default();
        let demux = waiters.clone();
        let reply_task = consume(&reply_ch, &reply_q, true, false, move |body| {
            let demux = demux.clone();
            async move {
                let Ok(mut reply) = open_envelope(&body) else {
                    return;
                };
                let msg_id = reply["_msg_id"].take();
                let waiter = msg_id.as_str().and_then(|id| demux.lock().ok()?.remove(id));
                if let Some(waiter) = waiter {
                    let _ = waiter.send(reply);
                }
            }
        })
        .await?;
        let caller = Arc::new(Caller {
            publish,
            reply_q: reply_q.clone(),
            waiters,
            topic: topic.clone(),
            payload: b.payload.clone(),
            overlap,
        });
        let result = drive(b.plan, row.workers, move || {
            let caller = caller.clone();
            async move { caller.call().await }
        })
        .await
        .0;
        link.close().await;
        server_link.close().await;
        reply_task.abort();
        server_task.abort();
        delete_queues(b.plan, &b.amqp_url, &[topic, reply_q]).await;
        result
    }

    /// Casts to a raw server, or notifications to a raw listener: each publish awaits
    /// its confirm; concurrent senders share one channel.
    pub async fn sends(b: &Bench, row: Row) -> Result<Measured, String> {
        let topic = b.topic("raw", row);
        let received = Arc::new(AtomicU64::new(0));
        let (consumer_link, consumer_task, queue, key) = if row.kind == Kind::Cast {
            let (link, task) = server(b, &topic, received.clone()).await?;
            (link, task, topic.clone(), topic.clone())
        } else {
            // A listener without a pool consumes `<topic>.<priority>` and acks when done.
            let queue = format!("{topic}.info");
            let mut link = Link::open(&b.amqp_url).await?;
            let ch = link.channel().await?;
            declare(&ch, &queue).await?;
            let counter = received.clone();
            let task = consume(&ch, &queue, false, false, move |body| {
                let counter = counter.clone();
                async move {
                    if open_envelope(&body).is_ok() {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .await?;
            (link, task, queue.clone(), queue)
        };
        let mut link = Link::open(&b.amqp_url).await?;
        let publish_ch = link.channel().await?;
        if row.kind == Kind::Notify {
            // The notifier declares and binds the default queue, once per channel.
            declare(&publish_ch, &queue).await?;
        }
        let sent = Arc::new(AtomicU64::new(0));
        let state = Arc::new((publish_ch, key, b.payload.clone(), sent.clone()));
        let kind = row.kind;
        let result = drive(b.plan, row.workers, move || {
            let state = state.clone();
            async move {
                let (ch, key, payload, sent) = &*state;
                let inner = if kind == Kind::Cast {
                    json!({"method": "echo", "args": {"data": &**payload}, "_unique_id": hex_id()})
                } else {
                    json!({
                        "message_id": uuid::Uuid::new_v4().to_string(),
                        "publisher_id": "bench.host", "event_type": "bench.event",
                        "priority": "INFO", "payload": {"data": &**payload},
                        "timestamp": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
                        "_unique_id": hex_id(),
                    })
                };
                publish(
                    ch,
                    EXCHANGE,
                    key,
                    false,
                    &envelope(&inner),
                    properties(None),
                )
                .await?;
                sent.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        })
        .await
        .0;
        let drained = match &result {
            Ok(_) => drain(b.plan, &received, sent.load(Ordering::Relaxed)).await,
            Err(_) => Ok(()),
        };
        link.close().await;
        consumer_link.close().await;
        consumer_task.abort();
        delete_queues(b.plan, &b.amqp_url, &[queue]).await;
        drained?;
        result
    }

    /// Whether the broker accepts an AMQP connection.
    /// Checks that the broker answers, and finds out whether it refuses transient
    /// non-exclusive queues (a refusal closes the connection).
    pub async fn reachable(b: &Bench) -> Result<(), String> {
        let link = tokio::time::timeout(Duration::from_secs(10), Link::open(&b.amqp_url))
            .await
            .map_err(|_| "no answer within 10 s".to_string())??;
        let probe = format!("bench_probe_{}", hex_id());
        let ch = link.conn.create_channel().await.map_err(err)?;
        match ch
            .queue_declare(
                probe.as_str().into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
        {
            Ok(_) => {
                ch.queue_delete(probe.as_str().into(), Default::default())
                    .await
                    .map_err(err)?;
            }
            Err(e) if e.to_string().contains("transient_nonexcl_queues") => {
                TRANSIENT_REFUSED.store(true, Ordering::Relaxed);
            }
            Err(e) => return Err(err(e)),
        }
        link.close().await;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------
// Python oslo.messaging: tests/peers/bench_oslo.py, its client against its server.
// ---------------------------------------------------------------------------------

/// Runs `rows` for one payload size in one Python process (its server in another).
fn run_python(b: &Bench, rows: &[Row]) -> Result<python::Report, String> {
    let keys: Vec<String> = rows.iter().map(Row::key).collect();
    let cmd = python::command(
        b.plan,
        &b.oslo_url,
        b.payload.len(),
        &keys,
        &b.python_topic(),
    )?;
    python::run(b.plan, cmd, keys.len())
}

/// The peer's queues, in case it died before cleaning up.
fn python_queues(b: &Bench) -> Vec<String> {
    let topic = b.python_topic();
    vec![
        topic.clone(),
        format!("{topic}.bench"),
        format!("{topic}_n.info"),
    ]
}

// ---------------------------------------------------------------------------------
// Report: the machine and one Markdown table per payload size.
// ---------------------------------------------------------------------------------

/// One line of a table: a scenario and what each implementation measured.
struct Line {
    row: Row,
    /// The raw variant that overlaps the request's confirm with the reply.
    overlapped: bool,
    ours: Cell,
    raw: Cell,
    python: Cell,
}

/// The machine and the broker's version, from `ctl` or `RABBITMQCTL` (a command, words
/// separated by spaces, as the tests read it: `scripts/services rabbit4-ctl` for
/// RabbitMQ 4), else `rabbitmqctl`.
fn machine(ctl: Option<&str>) -> String {
    let ctl = ctl
        .map(str::to_string)
        .or_else(|| std::env::var("RABBITMQCTL").ok())
        .unwrap_or_else(|| "rabbitmqctl".into());
    let rabbit = common::version(&ctl, "version")
        .unwrap_or_else(|| format!("unknown ({ctl} version failed)"));
    let refused = if TRANSIENT_REFUSED.load(Ordering::Relaxed) {
        ", refusing transient non-exclusive queues (topic queues durable, reply queues exclusive)"
    } else {
        ""
    };
    common::machine(&format!("RabbitMQ {rabbit}{refused}"))
}

fn table(payload: usize, lines: &[Line], python_version: Option<&str>) -> String {
    let mut t = Table::new(payload, "raw lapin", python_version, false);
    let mut last_ours: Option<f64> = None;
    for line in lines {
        let (label, ours) = if line.overlapped {
            // The ours cell of the row above, compared with the best raw can do.
            (
                format!(
                    "{}, raw awaits confirm and reply together",
                    line.row.label()
                ),
                ("″".to_string(), "″".to_string()),
            )
        } else {
            last_ours = common::throughput(&line.ours);
            (line.row.label(), cells(&line.ours))
        };
        let target = (!line.overlapped).then(|| line.row.target());
        let ratio = common::ratio(last_ours, &line.raw, target, "");
        t.line(
            &label,
            [&ours, &cells(&line.raw), &cells(&line.python)],
            &ratio,
            None,
        );
    }
    t.finish()
}

// ---------------------------------------------------------------------------------
// Main: every row of every payload size, then the tables.
// ---------------------------------------------------------------------------------

/// Whether a failure is expected rather than a defect: ours without the rabbit feature.
fn excusable(e: &str) -> bool {
    !cfg!(feature = "rabbit") && e.contains("no driver for scheme")
}

async fn run_row(b: &Bench, only: Only, row: Row) -> Vec<Line> {
    let progress = |who: &'static str| {
        move || PROFILE.say(format!("{} B, {}, {who}", b.payload.len(), row.label()))
    };
    let ours = side(only.ours, b.plan, progress("ours"), async {
        match row.kind {
            Kind::Notify => ours::notify(b, row).await,
            _ => ours::rpc(b, row).await,
        }
    })
    .await;
    let raw = side(only.raw, b.plan, progress("raw lapin"), async {
        match row.kind {
            Kind::Call => raw::calls(b, row, false).await,
            _ => raw::sends(b, row).await,
        }
    })
    .await;
    let mut lines = vec![Line {
        row,
        overlapped: false,
        ours,
        raw,
        python: None,
    }];
    if only.raw && row.kind == Kind::Call {
        let overlapped = raw::calls(b, row, true);
        lines.push(Line {
            row,
            overlapped: true,
            ours: None,
            raw: side(
                true,
                b.plan,
                progress("raw lapin, confirm overlapped"),
                overlapped,
            )
            .await,
            python: None,
        });
    }
    lines
}

#[tokio::main]
async fn main() -> ExitCode {
    common::main(&PROFILE, run()).await
}

/// Every row of every payload size, then the tables; whether a row failed.
async fn run() -> Result<bool, String> {
    let options = parse_options();
    options.check_python()?;
    let (oslo_url, amqp_url) = common::rabbit_urls(options.extra.url.clone());
    let run_id = common::run_id();
    let only = options.only;
    let mut failed = false;
    let mut out = String::new();
    for (i, &size) in options.payloads.iter().enumerate() {
        let b = Bench {
            oslo_url: oslo_url.clone(),
            amqp_url: amqp_url.clone(),
            plan: options.plan(),
            payload: common::payload(size),
            run_id: run_id.clone(),
        };
        raw::reachable(&b).await.map_err(|e| {
            format!("RabbitMQ unreachable at {amqp_url} ({e}); start it with scripts/services")
        })?;
        // After the first probe, which finds out how raw declares its queues.
        if options.full && i == 0 {
            let _ = writeln!(
                out,
                "RabbitMQ benchmark on {}",
                machine(options.extra.ctl.as_deref())
            );
            let _ = writeln!(
                out,
                "{} s per row after a {} s warm-up; latency per call, or per publish for casts and \
                 notifications (awaiting the publisher confirm); consumers drain every row.",
                options.seconds,
                options.plan().warmup.as_secs_f64()
            );
        }
        let rows: Vec<Row> = Row::ALL
            .into_iter()
            .filter(|r| options.wants(&r.key()))
            .collect();
        let mut lines = Vec::new();
        for &row in &rows {
            lines.extend(run_row(&b, only, row).await);
        }
        let mut version = None;
        if options.python_at(i) {
            PROFILE.say(format!("{size} B, Python oslo.messaging"));
            let report = tokio::task::spawn_blocking({
                let (b, rows) = (b.clone(), rows.clone());
                move || run_python(&b, &rows)
            })
            .await
            .map_err(err)
            .and_then(|r| r);
            let mut queues = python_queues(&b);
            if let Ok(python::Report {
                reply_queue: Some(q),
                ..
            }) = &report
            {
                queues.push(q.clone());
            }
            delete_queues(b.plan, &amqp_url, &queues).await;
            version = python::fill(
                report,
                lines
                    .iter_mut()
                    .filter(|l| !l.overlapped)
                    .map(|l| (l.row.key(), &mut l.python)),
            );
        }
        for line in &lines {
            let cells = [
                ("ours", &line.ours),
                ("raw", &line.raw),
                ("python", &line.python),
            ];
            failed |= common::failures(b.plan, size, &line.row.label(), cells, excusable);
        }
        out.push_str(&table(size, &lines, version.as_deref()));
    }
    println!("{out}");
    Ok(failed)
}
