//! Servers in other processes, found through Redis (`REDIS_URL`; `scripts/services`
//! starts it): calls reach them directed and load-balanced, fanout reaches all; a
//! server killed mid-stream makes calls to it fail while calls to the others go on,
//! and it disappears from Redis discovery after its registration TTL.
//!
//! The server processes are this test binary run again with `ZMQ_TEST_CHILD` set
//! (see [`child_server`]).

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use driver_zmq::destination::Destination;
use driver_zmq::matchmaker::{Matchmaker, Redis};
use messaging_core::rpc::{Endpoint, RpcServer};
use messaging_core::testkit::unique;
use messaging_core::{Context, Error, RemoteError, RpcClient, Target};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Registrations live 3 s and are renewed every second.
const TTL: &str = "zmq_target_expire=3&zmq_target_update=1";

fn url() -> String {
    format!("{}/?{}&{TTL}", support::redis_url(), support::LOOPBACK)
}

/// Not a test of its own: the body of a server process when `ZMQ_TEST_CHILD` is
/// `<topic> <server>`. It serves `whoami` (its process id), `echo`, `casts` (how
/// many `note` casts it got) until killed.
#[test]
fn child_server() {
    let Ok(spec) = std::env::var("ZMQ_TEST_CHILD") else {
        return;
    };
    let (topic, server) = spec.split_once(' ').expect("<topic> <server>");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let transport = support::transport(&url()).await.unwrap();
        let casts = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (c1, c2) = (casts.clone(), casts.clone());
        let endpoint = Endpoint::new()
            .method("whoami", |_c: Context, _: Value| async {
                Ok::<_, RemoteError>(std::process::id())
            })
            .method("echo", |_c: Context, v: Value| async move {
                Ok::<_, RemoteError>(v)
            })
            .method("note", move |_c: Context, _: Value| {
                let c = c1.clone();
                async move {
                    c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Ok::<_, RemoteError>(())
                }
            })
            .method("casts", move |_c: Context, _: Value| {
                let c = c2.clone();
                async move { Ok::<_, RemoteError>(c.load(std::sync::atomic::Ordering::SeqCst)) }
            });
        let _server = RpcServer::new(&transport, Target::topic(topic).server(server))
            .endpoint(endpoint)
            .start()
            .await
            .unwrap();
        println!("ready {}", std::process::id());
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

/// A server process on `topic` named `server`, once it is registered.
async fn spawn_server(topic: &str, server: &str) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_server", "--exact", "--nocapture", "--test-threads=1"])
        .env("ZMQ_TEST_CHILD", format!("{topic} {server}"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the test binary runs again");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("ready ") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "server process {server} did not start");
    child
}

fn ctx() -> Context {
    Context::new().with("test", "processes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_in_other_processes_are_called_and_fanned_out_to() {
    support::init_logging();
    support::require_redis();
    let topic = unique("procs");
    let mut a = spawn_server(&topic, "a").await;
    let mut b = spawn_server(&topic, "b").await;
    let transport = support::transport(&url()).await.unwrap();
    let client =
        RpcClient::new(&transport, Target::topic(topic.clone())).timeout(Duration::from_secs(10));
    let pid_a: u32 = client
        .prepare()
        .server("a")
        .call(&ctx(), "whoami", json!({}))
        .await
        .unwrap();
    let pid_b: u32 = client
        .prepare()
        .server("b")
        .call(&ctx(), "whoami", json!({}))
        .await
        .unwrap();
    assert_eq!(Some(pid_a), a.id());
    assert_eq!(Some(pid_b), b.id());
    assert_ne!(pid_a, std::process::id());
    // Bare calls go to both, in turn.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10 {
        let pid: u32 = client.call(&ctx(), "whoami", json!({})).await.unwrap();
        seen.insert(pid);
    }
    assert_eq!(seen, [pid_a, pid_b].into_iter().collect());
    let big = "x".repeat(1 << 20);
    let echoed: Value = client
        .call(&ctx(), "echo", json!({ "big": big }))
        .await
        .unwrap();
    assert!(echoed["big"] == big, "a 1 MiB argument travels");
    // Fanout reaches every process.
    client
        .prepare()
        .fanout(true)
        .cast(&ctx(), "note", json!({}))
        .await
        .unwrap();
    for server in ["a", "b"] {
        let mut casts = 0u64;
        for _ in 0..100 {
            casts = client
                .prepare()
                .server(server)
                .call(&ctx(), "casts", json!({}))
                .await
                .unwrap();
            if casts == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(casts, 1, "server {server} got the fanout once");
    }
    a.kill().await.unwrap();
    b.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_fails_its_calls_and_leaves_discovery() {
    support::init_logging();
    support::require_redis();
    let topic = unique("killed");
    let mut doomed = spawn_server(&topic, "doomed").await;
    let mut survivor = spawn_server(&topic, "survivor").await;
    let transport = support::transport(&url()).await.unwrap();
    let client =
        RpcClient::new(&transport, Target::topic(topic.clone())).timeout(Duration::from_secs(1));

    // A stream of calls to both; the doomed one is killed in the middle.
    let mut doomed_failures = Vec::new();
    let mut survivor_ok = 0;
    let mut bare_ok = 0;
    let mut killed_at = None;
    for i in 0..20 {
        if i == 5 {
            doomed.start_kill().unwrap();
            doomed.wait().await.unwrap();
            killed_at = Some(Instant::now());
        }
        let started = Instant::now();
        match client
            .prepare()
            .server("doomed")
            .call::<_, u32>(&ctx(), "whoami", json!({}))
            .await
        {
            Ok(_) => assert!(killed_at.is_none(), "a killed server answered"),
            Err(e) => {
                assert!(killed_at.is_some(), "call {i} failed before the kill: {e}");
                assert!(
                    started.elapsed() <= Duration::from_millis(1500),
                    "a call to a dead server ends within its timeout"
                );
                doomed_failures.push(e);
            }
        }
        let pid: u32 = client
            .prepare()
            .server("survivor")
            .call(&ctx(), "whoami", json!({}))
            .await
            .expect("calls to the survivor go on");
        assert_eq!(Some(pid), survivor.id());
        survivor_ok += 1;
        if killed_at.is_some()
            && client
                .call::<_, u32>(&ctx(), "whoami", json!({}))
                .await
                .is_ok()
        {
            bare_ok += 1;
        }
    }
    assert_eq!(survivor_ok, 20);
    assert_eq!(doomed_failures.len(), 15);
    for e in &doomed_failures {
        assert!(
            matches!(e, Error::Timeout(_)),
            "a call to the dead server times out: {e:?}"
        );
    }
    assert!(
        bare_ok >= 13,
        "bare calls go to the survivor once the dead node is unreachable ({bare_ok}/15)"
    );

    // Discovery forgets the dead server after its TTL (3 s); the survivor stays.
    let redis = Redis::new(&url().parse().unwrap()).unwrap();
    let key = |server: &str| Destination::Server {
        exchange: "openstack".into(),
        topic: topic.clone(),
        server: server.into(),
    };
    let killed_at = killed_at.unwrap();
    loop {
        if redis.lookup(&key("doomed")).await.unwrap().is_empty() {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(8),
            "the dead server is still registered 8 s after it died"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        killed_at.elapsed() >= Duration::from_secs(1),
        "it was registered until its TTL ran out"
    );
    assert_eq!(redis.lookup(&key("survivor")).await.unwrap().len(), 1);
    let shared = Destination::Topic {
        exchange: "openstack".into(),
        topic: topic.clone(),
    };
    assert_eq!(redis.lookup(&shared).await.unwrap().len(), 1);
    survivor.kill().await.unwrap();
}
