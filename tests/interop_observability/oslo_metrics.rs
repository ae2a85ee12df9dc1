//! A Rust service's RPC metrics on the oslo.metrics daemon's Prometheus page, with
//! oslo's names and labels, counted right.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use messaging::{Config, Context, Endpoint, RemoteError, RpcClient, RpcServer, Target};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::common::{python, require_python, unique};

/// How long the daemon may take to start (Python imports, binding the socket).
const START_LIMIT: Duration = Duration::from_secs(60);
/// How long updates may take to show on the page once sent.
const ARRIVAL_LIMIT: Duration = Duration::from_secs(30);

/// The `oslo-metrics` daemon on a socket and port of its own, killed when dropped.
struct Daemon {
    child: Child,
    socket: PathBuf,
    port: u16,
    dir: PathBuf,
}

impl Daemon {
    /// Starts `python -m oslo_metrics` and waits until its socket exists and its page
    /// answers.
    async fn start() -> Daemon {
        require_python();
        let dir = std::env::temp_dir().join(unique("oslo-metrics"));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let socket = dir.join("metrics.sock");
        // A port nobody listens on now; the daemon binds it right after.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = dir.join("oslo-metrics.conf");
        std::fs::write(
            &config,
            format!(
                "[oslo_metrics]\nmetrics_socket_file = {}\nprometheus_host = 127.0.0.1\n\
                 prometheus_port = {port}\n",
                socket.display()
            ),
        )
        .expect("daemon config");
        let child = Command::new(python())
            .args(["-m", "oslo_metrics", "--config-file"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {} -m oslo_metrics: {e}", python().display()));
        let daemon = Daemon {
            child,
            socket,
            port,
            dir,
        };
        let deadline = tokio::time::Instant::now() + START_LIMIT;
        loop {
            if daemon.socket.exists() && daemon.page().await.is_some() {
                return daemon;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the oslo-metrics daemon did not start within {START_LIMIT:?} (is oslo.metrics \
                 in the virtualenv? run scripts/services)"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The Prometheus page, if the daemon answers.
    async fn page(&self) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
        stream
            .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.0 200").then(|| body.to_string())
    }

    fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The samples of a Prometheus page: name, labels and value.
fn samples(page: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .filter_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    Some((k.to_string(), v.trim_matches('"').to_string()))
                })
                .collect();
            Some((name.to_string(), labels, value))
        })
        .collect()
}

/// Labels a sample must have: (name, value) pairs.
type Want<'a> = &'a [(&'a str, &'a str)];

/// The value of the sample `name` whose labels include every one of `want`.
fn sample(page: &str, name: &str, want: &[(&str, &str)]) -> Option<f64> {
    samples(page)
        .into_iter()
        .find(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, value)| value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oslo_metrics_daemon_serves_a_rust_service_s_rpc_metrics() {
    let daemon = Daemon::start().await;
    let process = unique("rust-calc");
    let config = Config::from_ini_str(&format!(
        "[oslo_messaging_metrics]\nmetrics_enabled = true\nmetrics_socket_file = {}\n\
         metrics_process_name = {process}\n",
        daemon.socket().display()
    ))
    .expect("config");
    let transport = messaging::registry()
        .transport("memory:///oslo-metrics", &config)
        .await
        .expect("memory transport");
    let topic = unique("calc");
    let endpoint = Endpoint::new()
        .name("CalcAPI")
        .method("add", |_c: Context, v: Value| async move {
            Ok::<_, RemoteError>(v["a"].as_i64().unwrap_or(0) + v["b"].as_i64().unwrap_or(0))
        })
        .method("fail", |_c: Context, _: Value| async move {
            Err::<(), _>(RemoteError::value_error("refused"))
        });
    let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("host1"))
        .endpoint(endpoint)
        .start()
        .await
        .expect("server");
    let client =
        RpcClient::new(&transport, Target::topic(topic.clone())).timeout(Duration::from_secs(30));
    const CALLS: i64 = 5;
    for a in 0..CALLS {
        let sum: i64 = client
            .call(&Context::new(), "add", json!({"a": a, "b": 1}))
            .await
            .expect("call");
        assert_eq!(sum, a + 1);
    }
    client
        .call::<_, Value>(&Context::new(), "fail", json!({}))
        .await
        .expect_err("fail raises");
    client
        .clone()
        .fanout(true)
        .cast(&Context::new(), "add", json!({"a": 0, "b": 0}))
        .await
        .expect("fanout cast");

    // The daemon exports unset labels as Python's str(None) and the fanout flag as
    // str(True); every sample of this test has its own `process` label.
    let add = [
        ("call_type", "call"),
        ("exchange", "None"),
        ("topic", topic.as_str()),
        ("namespace", "None"),
        ("version", "None"),
        ("server", "None"),
        ("fanout", "None"),
        ("method", "add"),
        ("timeout", "None"),
        ("process", process.as_str()),
    ];
    let served = [
        ("exchange", "None"),
        ("topic", topic.as_str()),
        ("server", "host1"),
        ("endpoint", "CalcAPI"),
        ("namespace", "None"),
        ("version", "None"),
        ("method", "add"),
        ("process", process.as_str()),
    ];
    let cast = [
        ("call_type", "cast"),
        ("fanout", "True"),
        ("process", process.as_str()),
    ];
    let failed = [
        ("method", "fail"),
        ("exception", "ValueError_Remote"),
        ("process", process.as_str()),
    ];
    let raised = [
        ("method", "fail"),
        ("exception", "ValueError"),
        ("endpoint", "CalcAPI"),
        ("process", process.as_str()),
    ];
    let expected: Vec<(&str, Want, f64)> = vec![
        (
            "oslo_messaging_rpc_client_invocation_start_total",
            &add,
            5.0,
        ),
        ("oslo_messaging_rpc_client_invocation_end_total", &add, 5.0),
        (
            "oslo_messaging_rpc_client_processing_seconds_count",
            &add,
            5.0,
        ),
        ("oslo_messaging_rpc_client_invocation_end_total", &cast, 1.0),
        ("oslo_messaging_rpc_client_exception_total", &failed, 1.0),
        (
            "oslo_messaging_rpc_server_invocation_start_total",
            &served,
            6.0,
        ),
        (
            "oslo_messaging_rpc_server_invocation_end_total",
            &served,
            6.0,
        ),
        (
            "oslo_messaging_rpc_server_processing_seconds_count",
            &served,
            6.0,
        ),
        ("oslo_messaging_rpc_server_exception_total", &raised, 1.0),
    ];
    // The fanout cast reaches the server too: 5 calls and 1 cast of `add` served.
    let deadline = tokio::time::Instant::now() + ARRIVAL_LIMIT;
    let page = loop {
        let page = daemon.page().await.unwrap_or_default();
        let all_there = expected
            .iter()
            .all(|(name, labels, value)| sample(&page, name, labels) == Some(*value));
        if all_there || tokio::time::Instant::now() >= deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (name, labels, value) in &expected {
        assert_eq!(
            sample(&page, name, labels),
            Some(*value),
            "{name} {labels:?} on the daemon's page:\n{}",
            page.lines()
                .filter(|l| l.contains(&process))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    server.stop().await;
    server.wait().await.expect("server drained");
}
