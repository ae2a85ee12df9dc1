//! What the driver's broker tests share: the broker URL, a check that it answers
//! (failing with the way to start it), transports, and raw lapin access.
#![allow(dead_code)] // each test crate uses a different subset

use std::time::Duration;

use messaging_core::{
    Config, Context, DriverRegistry, Endpoint, RemoteError, RpcServer, Target, Transport,
};
use serde_json::Value;

/// The broker of the tests: `RABBIT_URL`, default `rabbit://guest:guest@127.0.0.1:5672/`.
pub fn url() -> String {
    std::env::var("RABBIT_URL").unwrap_or_else(|_| "rabbit://guest:guest@127.0.0.1:5672/".into())
}

/// The same broker as lapin wants it.
pub fn amqp_url() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Panics, naming the script that starts RabbitMQ, unless the broker answers.
pub async fn require_broker() {
    let url: messaging_core::TransportUrl = url().parse().expect("RABBIT_URL");
    let host = url.hosts.first().cloned().unwrap_or_default();
    let addr = format!(
        "{}:{}",
        host.hostname.unwrap_or_else(|| "127.0.0.1".into()),
        host.port.unwrap_or(5672)
    );
    let reachable = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    assert!(
        reachable,
        "RabbitMQ is not reachable at {addr}: start it with scripts/services (or set RABBIT_URL)"
    );
}

/// A registry with the rabbit driver.
pub fn registry() -> DriverRegistry {
    let mut registry = DriverRegistry::with_memory();
    driver_rabbit::register(&mut registry);
    registry
}

/// A transport to the test broker with `ini` as configuration.
pub async fn transport_with(ini: &str, url_suffix: &str) -> Transport {
    require_broker().await;
    let config = Config::from_ini_str(ini).expect("test configuration");
    registry()
        .transport(&format!("{}{url_suffix}", url()), &config)
        .await
        .expect("rabbit transport")
}

/// A transport to the test broker with the default configuration.
pub async fn transport() -> Transport {
    transport_with("", "").await
}

/// A raw lapin connection to the test broker.
pub async fn raw() -> lapin::Connection {
    require_broker().await;
    lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
        .await
        .expect("raw lapin connection")
}

/// `ini` with a `control_exchange` of the test's own, named after `prefix`, and that
/// name. Tests that declare the control exchange other than oslo's defaults do (durable,
/// for quorum or durable queues) use one: the first declaration of an exchange on a
/// fresh broker decides its flags, and a durable `openstack` would make every later
/// default declaration (Python's included) join or be refused.
pub fn own_exchange(prefix: &str, ini: &str) -> (String, String) {
    let exchange = unique(prefix);
    (
        format!("[DEFAULT]\ncontrol_exchange = {exchange}\n{ini}"),
        exchange,
    )
}

/// Deletes exchange `name` on the broker at `amqp_url` (lapin form), best effort.
pub async fn delete_exchange(amqp_url: &str, name: &str) {
    let Ok(connection) =
        lapin::Connection::connect(amqp_url, lapin::ConnectionProperties::default()).await
    else {
        return;
    };
    if let Ok(channel) = connection.create_channel().await {
        let _ = channel
            .exchange_delete(name.into(), Default::default())
            .await;
        let _ = channel.close(200, "OK".into()).await;
    }
    let _ = connection.close(200, "OK".into()).await;
}

/// Runs `program` with `args` (in `dir` if given), returning its standard output;
/// panics with its standard error if it fails.
pub fn command(program: &str, args: &[&str], dir: Option<&std::path::Path>) -> String {
    let mut command = std::process::Command::new(program);
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{program} runs (scripts/services installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `rabbitmqctl` with `args` against the test broker, returning its standard
/// output. `RABBITMQCTL` names another command for another broker (words separated by
/// spaces), e.g. `scripts/services rabbit4-ctl` for RabbitMQ 4.
pub fn rabbitmqctl(args: &[&str]) -> String {
    let ctl = std::env::var("RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".into());
    let mut words = ctl.split_whitespace();
    let program = words.next().unwrap_or("rabbitmqctl");
    let mut all: Vec<&str> = words.collect();
    all.extend_from_slice(args);
    command(program, &all, None)
}

/// This process's connections on the test broker (their pids), by the
/// `<program>:<pid>:` prefix of the names the driver gives them.
pub fn our_connections() -> Vec<String> {
    let program = std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .expect("the test binary's name");
    let prefix = format!("{program}:{}:", std::process::id());
    rabbitmqctl(&[
        "list_connections",
        "-q",
        "--no-table-headers",
        "pid",
        "client_properties",
    ])
    .lines()
    .filter(|l| l.contains(&prefix))
    .filter_map(|l| l.split('\t').next().map(str::to_string))
    .collect()
}

/// Runs `<script> rabbit4-ctl` with `args`: rabbitmqctl against RabbitMQ 4.
pub fn rabbitmqctl_on(args: &[&str], script: &str) -> String {
    let mut all = vec!["rabbit4-ctl"];
    all.extend_from_slice(args);
    command(script, &all, None)
}

/// The first line of `rabbitmqctl args` whose first column is `name`, waiting up to
/// 10 s for it: the broker lists a consumer a moment after it started (its metrics are
/// recorded asynchronously).
pub async fn listed(args: &[&str], name: &str) -> Option<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = rabbitmqctl(args)
            .lines()
            .find(|l| l.split('\t').next() == Some(name))
            .map(str::to_string);
        if found.is_some() || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The line of `rabbitmqctl list_queues name <columns>` for queue `name`.
pub fn queue_info(name: &str, columns: &[&str]) -> Option<String> {
    let mut args = vec!["list_queues", "-q", "--no-table-headers", "name"];
    args.extend_from_slice(columns);
    rabbitmqctl(&args)
        .lines()
        .find(|l| l.split('\t').next() == Some(name))
        .map(str::to_string)
}

/// Whether the test broker refuses transient queues that are not exclusive (RabbitMQ
/// 4.3's default): tried with a raw declaration.
pub async fn refuses_transient_queues() -> bool {
    let connection = raw().await;
    let channel = connection.create_channel().await.expect("a raw channel");
    let name = unique("transient_probe");
    let outcome = channel
        .queue_declare(name.as_str().into(), Default::default(), Default::default())
        .await;
    let refused = match outcome {
        Ok(_) => {
            let _ = channel
                .queue_delete(name.as_str().into(), Default::default())
                .await;
            false
        }
        Err(e) if e.to_string().contains("transient_nonexcl_queues") => true,
        Err(e) => panic!("declaring a transient queue: {e}"),
    };
    let _ = connection.close(200, "OK".into()).await;
    refused
}

/// A unique name for this test run.
pub fn unique(prefix: &str) -> String {
    messaging_core::testkit::unique(prefix)
}

/// An endpoint whose `echo(data)` returns `data`.
pub fn echo_endpoint() -> Endpoint {
    Endpoint::new().method(
        "echo",
        |_c: Context, a: serde_json::Map<String, Value>| async move {
            Ok::<_, RemoteError>(a.get("data").cloned().unwrap_or(Value::Null))
        },
    )
}

/// An `echo` server on `<topic>` as server `s1`.
pub async fn echo_server(transport: &Transport, topic: &str) -> RpcServer {
    RpcServer::new(transport, Target::topic(topic.to_string()).server("s1"))
        .endpoint(echo_endpoint())
        .start()
        .await
        .expect("echo server starts")
}

/// Declares `queue` (with `arguments`) on `channel` and binds it to oslo's default
/// exchange `openstack` with `routing_key`: a queue of the test's beside the driver's.
pub async fn declare_bound(
    channel: &lapin::Channel,
    queue: &str,
    routing_key: &str,
    arguments: lapin::types::FieldTable,
) {
    // Exclusive: RabbitMQ 4.3 refuses transient queues that are not.
    let options = lapin::options::QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    };
    channel
        .queue_declare(queue.into(), options, arguments)
        .await
        .expect("queue declared");
    channel
        .queue_bind(
            queue.into(),
            "openstack".into(),
            routing_key.into(),
            Default::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .expect("queue bound");
}
