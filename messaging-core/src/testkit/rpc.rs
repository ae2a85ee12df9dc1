//! RPC scenarios (oslo's `test_functional` call/cast cases and `TestMultipleServers`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{TransportFactory, unique};
use crate::rpc::{AccessPolicy, Endpoint, RpcServer};
use crate::{Context, Error, RemoteError, Result, RpcClient, Serializer, Target, Transport};

/// What one test server saw: oslo's `TestServerEndpoint` state.
#[derive(Debug, Default)]
struct ServerState {
    ival: i64,
    sval: String,
    calls: usize,
    /// long_running_task calls begun.
    started: usize,
}

#[derive(Deserialize)]
struct Increment {
    increment: i64,
}

#[derive(Deserialize)]
struct Text {
    text: String,
}

#[derive(Deserialize)]
struct Seconds {
    seconds: f64,
}

/// oslo's `TestServerEndpoint`: add, subtract (ValueError below zero), append,
/// long_running_task, plus `state` to read the counters.
fn test_endpoint(state: Arc<Mutex<ServerState>>) -> Endpoint {
    let (s1, s2, s3, s4, s5) = (
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
        state,
    );
    Endpoint::new()
        .method("add", move |_c: Context, a: Increment| {
            let s = s1.clone();
            async move {
                let mut s = s.lock().unwrap();
                s.calls += 1;
                s.ival += a.increment;
                Ok::<_, RemoteError>(s.ival)
            }
        })
        .method("subtract", move |_c: Context, a: Increment| {
            let s = s2.clone();
            async move {
                let mut s = s.lock().unwrap();
                s.calls += 1;
                if s.ival < a.increment {
                    return Err(RemoteError::value_error("ival can't go negative"));
                }
                s.ival -= a.increment;
                Ok(s.ival)
            }
        })
        .method("append", move |_c: Context, a: Text| {
            let s = s3.clone();
            async move {
                let mut s = s.lock().unwrap();
                s.calls += 1;
                s.sval.push_str(&a.text);
                Ok::<_, RemoteError>(s.sval.clone())
            }
        })
        .method("long_running_task", move |_c: Context, a: Seconds| {
            let s = s4.clone();
            async move {
                s.lock().unwrap().started += 1;
                tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
                s.lock().unwrap().calls += 1;
                Ok::<_, RemoteError>(a.seconds)
            }
        })
        .method("state", move |_c: Context, _: Value| {
            let s = s5.clone();
            async move {
                let s = s.lock().unwrap();
                Ok::<_, RemoteError>(json!({"ival": s.ival, "sval": s.sval, "calls": s.calls}))
            }
        })
}

/// Servers on one topic, as oslo's `RpcServerGroupFixture`.
struct Group {
    topic: String,
    exchange: Option<String>,
    names: Vec<String>,
    servers: Vec<RpcServer>,
    states: Vec<Arc<Mutex<ServerState>>>,
    transport: Transport,
}

impl Group {
    async fn start(
        factory: &TransportFactory,
        topic: &str,
        exchange: Option<&str>,
        n: usize,
    ) -> Result<Group> {
        let transport = factory.transport().await?;
        let mut group = Group {
            topic: topic.to_string(),
            exchange: exchange.map(str::to_string),
            names: Vec::new(),
            servers: Vec::new(),
            states: Vec::new(),
            transport,
        };
        for i in 0..n {
            let name = unique(&format!("server_{i}"));
            let state = Arc::new(Mutex::new(ServerState::default()));
            let server_transport = factory.transport().await?;
            let server = RpcServer::new(&server_transport, group.target().server(name.clone()))
                .endpoint(test_endpoint(state.clone()))
                .start()
                .await?;
            group.names.push(name);
            group.servers.push(server);
            group.states.push(state);
        }
        Ok(group)
    }

    fn target(&self) -> Target {
        let t = Target::topic(self.topic.clone());
        match &self.exchange {
            Some(x) => t.exchange(x.clone()),
            None => t,
        }
    }

    fn client(&self) -> RpcClient {
        RpcClient::new(&self.transport, self.target()).timeout(Duration::from_secs(5))
    }

    /// Waits (up to 5 s) until the servers have handled `expected_total` requests in
    /// all: casts give no other sign of arrival.
    async fn settle(&self, expected_total: usize) {
        for _ in 0..500 {
            if self.calls().iter().sum::<usize>() >= expected_total {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn calls(&self) -> Vec<usize> {
        self.states
            .iter()
            .map(|s| s.lock().unwrap().calls)
            .collect()
    }

    async fn stop(self) -> Result<()> {
        for s in &self.servers {
            s.stop().await?;
        }
        for s in &self.servers {
            s.wait().await?;
        }
        Ok(())
    }
}

fn ctx() -> Context {
    Context::new()
        .with("application", "testkit")
        .with("cast", false)
}

/// Calls directed to one server change only that server; results are right.
pub async fn call_specific_server(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("specific"), None, 3).await?;
    let client = group.client().server(group.names[1].clone());
    let text: String = client
        .call(&ctx(), "append", json!({"text": "open"}))
        .await?;
    assert_eq!(text, "open");
    let text: String = client
        .call(&ctx(), "append", json!({"text": "stack"}))
        .await?;
    assert_eq!(text, "openstack");
    let ival: i64 = client.call(&ctx(), "add", json!({"increment": 12})).await?;
    assert_eq!(ival, 12);
    let ival: i64 = client
        .call(&ctx(), "subtract", json!({"increment": 3}))
        .await?;
    assert_eq!(ival, 9);
    assert_eq!(group.calls(), vec![0, 4, 0]);
    group.stop().await
}

/// Calls on the bare topic are spread over every server, none lost or repeated.
pub async fn call_server_in_group(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("group"), None, 3).await?;
    let client = group.client();
    for _ in 0..30 {
        let _: i64 = client.call(&ctx(), "add", json!({"increment": 1})).await?;
    }
    let calls = group.calls();
    assert_eq!(calls.iter().sum::<usize>(), 30, "{calls:?}");
    assert!(
        calls.iter().all(|c| *c > 0),
        "every server gets calls: {calls:?}"
    );
    let total: i64 = group.states.iter().map(|s| s.lock().unwrap().ival).sum();
    assert_eq!(total, 30);
    group.stop().await
}

/// Groups in different exchanges are isolated. Each group has its own topic, as in
/// oslo's functional test: on RabbitMQ queue names are global, so one topic in two
/// exchanges would share its queue.
pub async fn call_different_exchanges(factory: &TransportFactory) -> Result<()> {
    let (xa, xb) = (unique("a"), unique("b"));
    let g1 = Group::start(factory, &unique("exchanges"), None, 2).await?;
    let g2 = Group::start(factory, &unique("exchanges"), Some(&xa), 2).await?;
    let g3 = Group::start(factory, &unique("exchanges"), Some(&xb), 2).await?;
    for g in [&g1, &g2] {
        let client = g.client();
        for _ in 0..4 {
            let _: i64 = client.call(&ctx(), "add", json!({"increment": 1})).await?;
        }
        let _: i64 = client
            .prepare()
            .server(g.names[0].clone())
            .call(&ctx(), "add", json!({"increment": 1}))
            .await?;
        assert_eq!(g.calls().iter().sum::<usize>(), 5, "{:?}", g.calls());
    }
    assert_eq!(g3.calls(), vec![0, 0], "the third exchange got nothing");
    g1.stop().await?;
    g2.stop().await?;
    g3.stop().await
}

/// A call nobody serves times out.
pub async fn call_timeout(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let client = RpcClient::new(&transport, Target::topic(unique("nobody")))
        .timeout(Duration::from_millis(300));
    let err = client
        .call::<_, Value>(&ctx(), "add", json!({"increment": 1}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    Ok(())
}

/// The server's ValueError reaches the caller as builtins.ValueError.
pub async fn call_exception(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("exception"), None, 1).await?;
    let err = group
        .client()
        .call::<_, i64>(&ctx(), "subtract", json!({"increment": 3}))
        .await
        .unwrap_err();
    match err {
        Error::Remote(remote) => {
            assert!(remote.is("builtins", "ValueError"), "{remote:?}");
            assert_eq!(remote.message, "ival can't go negative");
        }
        other => panic!("expected a remote ValueError, got {other:?}"),
    }
    group.stop().await
}

/// A long call times out while concurrent short calls on the same reply queue succeed.
pub async fn call_timeout_with_concurrent_calls(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("concurrent"), None, 1).await?;
    let client = group.client();
    let slow = client.prepare().timeout(Duration::from_millis(500));
    let long = tokio::spawn(async move {
        slow.call::<_, f64>(&ctx(), "long_running_task", json!({"seconds": 1.5}))
            .await
    });
    let mut short = Vec::new();
    for _ in 0..10 {
        let c = client.clone();
        short.push(tokio::spawn(async move {
            c.call::<_, i64>(&ctx(), "add", json!({"increment": 1}))
                .await
        }));
    }
    for s in short {
        s.await.expect("call task")?;
    }
    assert_eq!(group.states[0].lock().unwrap().ival, 10);
    let err = long.await.expect("call task").unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    group.stop().await
}

/// With at_least_once, a call to a server that does not exist fails at once with
/// Undeliverable; without it, it times out.
pub async fn mandatory_call(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("mandatory"), None, 1).await?;
    let client = group
        .client()
        .server(unique("ghost"))
        .timeout(Duration::from_millis(500));
    let err = client
        .call::<_, i64>(&ctx(), "add", json!({"increment": 1}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    let started = std::time::Instant::now();
    let err = client
        .prepare()
        .at_least_once(true)
        .call::<_, i64>(&ctx(), "add", json!({"increment": 1}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Undeliverable { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "undeliverable is reported before the timeout"
    );
    let cast = group.client().server(unique("ghost")).at_least_once(true);
    let err = cast
        .cast(&ctx(), "add", json!({"increment": 1}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Undeliverable { .. }), "{err:?}");
    group.stop().await
}

/// A call longer than its timeout fails; with a call-monitor timeout, server
/// heartbeats keep a long call alive.
pub async fn monitor_long_call(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("monitor"), None, 1).await?;
    let client = group.client();
    let err = client
        .prepare()
        .timeout(Duration::from_millis(500))
        .call::<_, f64>(&ctx(), "long_running_task", json!({"seconds": 1.5}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    let seconds: f64 = client
        .prepare()
        .timeout(Duration::from_secs(3600))
        .call_monitor_timeout(Duration::from_secs(2))
        .call(&ctx(), "long_running_task", json!({"seconds": 3.0}))
        .await?;
    assert_eq!(seconds, 3.0);
    group.stop().await
}

/// Namespace and version dispatch: same version works, a higher minor or another
/// namespace fails with UnsupportedVersion.
pub async fn endpoint_version_namespace(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let topic = unique("versions");
    let endpoint = Endpoint::new()
        .namespace("Name1")
        .version("7.5")
        .method("echo", |_c: Context, v: Value| async move {
            Ok::<_, RemoteError>(v)
        });
    let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("s1"))
        .endpoint(endpoint)
        .start()
        .await?;
    let client = RpcClient::new(&transport, Target::topic(topic)).timeout(Duration::from_secs(5));
    let ok: Value = client
        .prepare()
        .namespace("Name1")
        .version("7.5")
        .call(&ctx(), "echo", json!({"a": 1}))
        .await?;
    assert_eq!(ok, json!({"a": 1}));
    for c in [
        client.prepare().namespace("Name1").version("7.6"),
        client.prepare().namespace("Name2").version("7.5"),
    ] {
        match c.call::<_, Value>(&ctx(), "echo", json!({})).await {
            Err(Error::Remote(r)) => assert!(
                r.is("oslo_messaging.rpc.dispatcher", "UnsupportedVersion"),
                "{r:?}"
            ),
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
    }
    server.stop().await?;
    server.wait().await
}

/// An endpoint method named `target` is refused when the server is built.
pub async fn bad_endpoint(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let endpoint = Endpoint::new().method("target", |_c: Context, v: Value| async move {
        Ok::<_, RemoteError>(v)
    });
    let err = RpcServer::new(&transport, Target::topic(unique("bad")).server("s"))
        .endpoint(endpoint)
        .build()
        .err();
    assert!(matches!(err, Some(Error::Config(_))), "{err:?}");
    Ok(())
}

/// Casts to one server reach only it; casts are unordered.
pub async fn cast_specific_server(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("castone"), None, 3).await?;
    let client = group.client().server(group.names[0].clone());
    client
        .cast(&ctx(), "append", json!({"text": "open"}))
        .await?;
    client
        .cast(&ctx(), "append", json!({"text": "stack"}))
        .await?;
    client.cast(&ctx(), "add", json!({"increment": 12})).await?;
    group.settle(3).await;
    let s = group.states[0].lock().unwrap().sval.clone();
    assert!(s == "openstack" || s == "stackopen", "{s}");
    assert_eq!(group.states[0].lock().unwrap().ival, 12);
    assert_eq!(group.calls(), vec![3, 0, 0]);
    group.stop().await
}

/// Casts on the bare topic are split over the servers.
pub async fn cast_server_in_group(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("castgroup"), None, 3).await?;
    let client = group.client();
    for _ in 0..20 {
        client.cast(&ctx(), "add", json!({"increment": 1})).await?;
    }
    group.settle(20).await;
    let calls = group.calls();
    assert_eq!(calls.iter().sum::<usize>(), 20, "{calls:?}");
    assert!(calls.iter().all(|c| *c > 0 && *c < 20), "{calls:?}");
    group.stop().await
}

/// A fanout cast reaches every server.
pub async fn cast_fanout(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("fanout"), None, 3).await?;
    group
        .client()
        .fanout(true)
        .cast(&ctx(), "add", json!({"increment": 12}))
        .await?;
    group.settle(3).await;
    for name in &group.names {
        let state: Value = group
            .client()
            .server(name.clone())
            .call(&ctx(), "state", json!({}))
            .await?;
        assert_eq!(state["ival"], 12, "{name}");
    }
    group.stop().await
}

/// A test serializer as oslo's: `s`/`d` prefixes on strings.
struct PrefixSerializer;

impl Serializer for PrefixSerializer {
    fn serialize_entity(&self, _c: &Context, v: Value) -> Result<Value> {
        Ok(match v {
            Value::String(s) if !s.is_empty() => Value::String(format!("s{s}")),
            v => v,
        })
    }
    fn deserialize_entity(&self, _c: &Context, v: Value) -> Result<Value> {
        Ok(match v {
            Value::String(s) if !s.is_empty() => Value::String(format!("d{s}")),
            v => v,
        })
    }
    fn serialize_context(&self, c: &Context) -> Result<Context> {
        Ok(Context(
            c.as_map()
                .iter()
                .map(|(k, v)| (k.clone(), prefix("s", v)))
                .collect(),
        ))
    }
    fn deserialize_context(&self, c: Context) -> Result<Context> {
        Ok(Context(
            c.as_map()
                .iter()
                .map(|(k, v)| (k.clone(), prefix("d", v)))
                .collect(),
        ))
    }
}

fn prefix(p: &str, v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(format!("{p}{s}")),
        other => other.clone(),
    }
}

/// oslo's `TestMultipleServers`: 36 combinations of exchange, topic, server, fanout,
/// call/cast and shared/separate endpoints, each checking who received what. Where
/// exchanges are not isolated (RabbitMQ), the 6 cases of one topic in two exchanges
/// do not apply: oslo runs this matrix on its fake driver only.
pub async fn multiple_servers_matrix(factory: &TransportFactory) -> Result<()> {
    let isolated = factory.transport().await?.capabilities().isolated_exchanges;
    let mut ran = 0;
    for diff_exchange in [false, true] {
        for diff_topic in [false, true] {
            for diff_server in [false, true] {
                for fanout in [false, true] {
                    for call in [true, false] {
                        for multi in [false, true] {
                            if (fanout && call) || (!diff_topic && !diff_server) {
                                continue;
                            }
                            if !isolated && diff_exchange && !diff_topic {
                                continue;
                            }
                            let case = MatrixCase {
                                diff_exchange,
                                diff_topic,
                                diff_server,
                                fanout,
                                call,
                                multi,
                            };
                            case.run(factory).await?;
                            ran += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(ran, if isolated { 36 } else { 30 });
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct MatrixCase {
    diff_exchange: bool,
    diff_topic: bool,
    diff_server: bool,
    fanout: bool,
    call: bool,
    multi: bool,
}

impl MatrixCase {
    async fn run(self, factory: &TransportFactory) -> Result<()> {
        let base = unique("m");
        let (x1, x2) = if self.diff_exchange {
            (Some(format!("{base}x1")), Some(format!("{base}x2")))
        } else {
            (None, None)
        };
        let (t1, t2) = if self.diff_topic {
            (format!("{base}t1"), format!("{base}t2"))
        } else {
            (format!("{base}t"), format!("{base}t"))
        };
        let (s1, s2) = if self.diff_server {
            (Some("s1"), Some("s2"))
        } else {
            (None, None)
        };
        let pings1 = Arc::new(Mutex::new(Vec::<String>::new()));
        let pings2 = if self.multi {
            Arc::new(Mutex::new(Vec::new()))
        } else {
            pings1.clone()
        };
        let transport1 = factory.transport().await?;
        let transport2 = if self.diff_exchange {
            factory.transport().await?
        } else {
            transport1.clone()
        };
        let mut servers = Vec::new();
        let mut clients = Vec::new();
        for (transport, exchange, topic, server, pings) in [
            (&transport1, &x1, &t1, s1, &pings1),
            (&transport2, &x2, &t2, s2, &pings2),
        ] {
            let mut target = Target::topic(topic.clone()).server(server.unwrap_or("testserver"));
            target.exchange = exchange.clone();
            let pings = pings.clone();
            let endpoint = Endpoint::new()
                .method("ping", move |_c: Context, a: HashMap<String, String>| {
                    let pings = pings.clone();
                    async move {
                        pings
                            .lock()
                            .unwrap()
                            .push(a.get("arg").cloned().unwrap_or_default());
                        Ok::<_, RemoteError>(Value::Null)
                    }
                })
                .method("alive", |_c: Context, _: Value| async {
                    Ok::<_, RemoteError>("alive")
                });
            servers.push(
                RpcServer::new(transport, target)
                    .endpoint(endpoint)
                    .serializer(Arc::new(PrefixSerializer))
                    .max_concurrency(1)
                    .start()
                    .await?,
            );
            let mut client_target = Target::topic(topic.clone());
            client_target.exchange = exchange.clone();
            client_target.server = server.map(str::to_string);
            let client = RpcClient::new(transport, client_target)
                .serializer(Arc::new(PrefixSerializer))
                .timeout(Duration::from_secs(5));
            clients.push(client);
        }
        if self.fanout {
            for c in &mut clients {
                let _: String = c.call(&Context::new(), "alive", json!({})).await?;
                *c = c.prepare().fanout(true);
            }
        }
        for (client, arg) in clients.iter().zip(["1", "2"]) {
            if self.call {
                let _: Value = client
                    .call(&Context::new(), "ping", json!({"arg": arg}))
                    .await?;
            } else {
                client
                    .cast(&Context::new(), "ping", json!({"arg": arg}))
                    .await?;
            }
        }
        // oslo's expectations: per-endpoint lists, doubled for fanout to two servers in
        // one place, merged into "either" when two endpoints share one place.
        let same_place = !self.diff_exchange && !self.diff_topic;
        let (mut expect1, mut expect2) = if self.multi {
            (vec!["ds1"], vec!["ds2"])
        } else {
            (vec!["ds1", "ds2"], vec!["ds1", "ds2"])
        };
        if self.fanout && same_place && self.diff_server {
            expect1 = [expect1.clone(), expect1].concat();
            expect2 = [expect2.clone(), expect2].concat();
        }
        let either: Vec<&str> = if same_place && self.multi {
            [expect1.clone(), expect2.clone()].concat()
        } else {
            vec![]
        };
        let expected_total = match (self.multi, either.is_empty()) {
            (true, false) => either.len(),
            (true, true) => expect1.len() + expect2.len(),
            (false, _) => expect1.len(),
        };
        let received = || {
            if self.multi {
                pings1.lock().unwrap().len() + pings2.lock().unwrap().len()
            } else {
                pings1.lock().unwrap().len()
            }
        };
        for _ in 0..300 {
            if received() >= expected_total {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Give wrongly routed copies a moment to show up.
        tokio::time::sleep(Duration::from_millis(30)).await;
        for s in &servers {
            s.stop().await?;
        }
        for s in &servers {
            s.wait().await?;
        }
        let check = |got: Vec<String>, expect: &[&str]| {
            let mut got = got;
            got.sort();
            let mut want: Vec<String> = expect.iter().map(|s| s.to_string()).collect();
            want.sort();
            assert_eq!(got, want, "{self:?}");
        };
        if !either.is_empty() {
            check(
                [
                    pings1.lock().unwrap().clone(),
                    pings2.lock().unwrap().clone(),
                ]
                .concat(),
                &either,
            );
        } else {
            check(pings1.lock().unwrap().clone(), &expect1);
            check(pings2.lock().unwrap().clone(), &expect2);
        }
        Ok(())
    }
}

/// `stop` takes no new requests, `wait` lets in-flight ones finish and reply.
pub async fn server_stop_drains_in_flight(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("drain"), None, 1).await?;
    let client = group.client();
    let call = tokio::spawn(async move {
        client
            .call::<_, f64>(&ctx(), "long_running_task", json!({"seconds": 0.5}))
            .await
    });
    // Stop while the request is being handled.
    for _ in 0..500 {
        if group.states[0].lock().unwrap().started > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        group.states[0].lock().unwrap().started,
        1,
        "the call arrived"
    );
    group.servers[0].stop().await?;
    group.servers[0].wait().await?;
    assert_eq!(
        group.states[0].lock().unwrap().calls,
        1,
        "the in-flight call finished before wait returned"
    );
    assert_eq!(call.await.expect("call task")?, 0.5);
    let late = group.client().timeout(Duration::from_millis(300));
    let err = late
        .call::<_, i64>(&ctx(), "add", json!({"increment": 1}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout(_)),
        "a stopped server takes nothing: {err:?}"
    );
    group.servers[0].start().await?;
    let ival: i64 = group
        .client()
        .call(&ctx(), "add", json!({"increment": 1}))
        .await?;
    assert!(ival >= 1);
    group.stop().await
}

/// A server can be started again after stop and wait; a second start is ignored.
pub async fn server_restart(factory: &TransportFactory) -> Result<()> {
    let group = Group::start(factory, &unique("restart"), None, 1).await?;
    let server = &group.servers[0];
    server.start().await?;
    for round in 1..=3 {
        let ival: i64 = group
            .client()
            .call(&ctx(), "add", json!({"increment": 1}))
            .await?;
        assert_eq!(ival, round);
        server.stop().await?;
        server.wait().await?;
        server.stop().await?;
        server.wait().await?;
        server.start().await?;
    }
    group.stop().await
}

/// At most `max_concurrency` requests run at once.
pub async fn concurrency_limit(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let topic = unique("limit");
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let endpoint = Endpoint::new().method("work", move |_c: Context, _: Value| {
        let (r, p) = (r.clone(), p.clone());
        async move {
            let now = r.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            r.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, RemoteError>(())
        }
    });
    let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("s"))
        .endpoint(endpoint)
        .max_concurrency(2)
        .start()
        .await?;
    let client = RpcClient::new(&transport, Target::topic(topic)).timeout(Duration::from_secs(5));
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.call::<_, ()>(&ctx(), "work", json!({})).await })
        })
        .collect();
    for c in calls {
        c.await.expect("call task")?;
    }
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    server.stop().await?;
    server.wait().await
}

/// Arguments, results and context pass through the serializer on both sides
/// (oslo's `test_call`, `test_context`: 'foo' comes back as 'dsdsfoo').
pub async fn serializer_round_trip(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let topic = unique("serializer");
    let endpoint = Endpoint::new()
        .method(
            "echo",
            |_c: Context, a: HashMap<String, Value>| async move {
                Ok::<_, RemoteError>(a.get("arg").cloned().unwrap_or(Value::Null))
            },
        )
        .method(
            "ctxt_check",
            |c: Context, a: HashMap<String, String>| async move {
                let key = a.get("key").cloned().unwrap_or_default();
                Ok::<_, RemoteError>(c.get(&key).cloned().unwrap_or(Value::Null))
            },
        );
    let server = RpcServer::new(
        &transport,
        Target::topic(topic.clone()).server("testserver"),
    )
    .endpoint(endpoint)
    .serializer(Arc::new(PrefixSerializer))
    .start()
    .await?;
    let client = RpcClient::new(&factory.transport().await?, Target::topic(topic))
        .serializer(Arc::new(PrefixSerializer))
        .timeout(Duration::from_secs(5));
    for (arg, expected) in [
        (json!(null), json!(null)),
        (json!(0), json!(0)),
        (json!(false), json!(false)),
        (json!([]), json!([])),
        (json!({}), json!({})),
        (json!("foo"), json!("dsdsfoo")),
    ] {
        let got: Value = client
            .call(&Context::new(), "echo", json!({ "arg": arg }))
            .await?;
        assert_eq!(got, expected);
        let direct: Value = client
            .prepare()
            .server("testserver")
            .call(&Context::new(), "echo", json!({ "arg": arg }))
            .await?;
        assert_eq!(direct, expected);
    }
    let got: Value = client
        .call(
            &Context::new().with("dsa", "b"),
            "ctxt_check",
            json!({"key": "a"}),
        )
        .await?;
    assert_eq!(got, json!("dsdsb"));
    server.stop().await?;
    server.wait().await
}

/// The default policy refuses `_private` methods; the legacy one allows them; the
/// explicit one allows only exposed methods.
pub async fn private_methods_refused(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let endpoint = || {
        Endpoint::new()
            .method("_secret", |_c: Context, _: Value| async {
                Ok::<_, RemoteError>("secret")
            })
            .method("public", |_c: Context, _: Value| async {
                Ok::<_, RemoteError>("public")
            })
            .exposed_method("exposed", |_c: Context, _: Value| async {
                Ok::<_, RemoteError>("exposed")
            })
    };
    let cases = [
        (AccessPolicy::Default, [false, true, true]),
        (AccessPolicy::Legacy, [true, true, true]),
        (AccessPolicy::Explicit, [false, false, true]),
    ];
    for (policy, allowed) in cases {
        let topic = unique("policy");
        let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("s"))
            .endpoint(endpoint())
            .access_policy(policy)
            .start()
            .await?;
        let client =
            RpcClient::new(&transport, Target::topic(topic)).timeout(Duration::from_secs(5));
        for (method, ok) in ["_secret", "public", "exposed"].into_iter().zip(allowed) {
            match client.call::<_, String>(&ctx(), method, json!({})).await {
                Ok(v) => assert!(
                    ok && v == method.trim_start_matches('_'),
                    "{policy:?} {method}"
                ),
                Err(Error::Remote(r)) => {
                    assert!(!ok, "{policy:?} refused {method}");
                    assert!(
                        r.is("oslo_messaging.rpc.dispatcher", "NoSuchMethod"),
                        "{r:?}"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        server.stop().await?;
        server.wait().await?;
    }
    Ok(())
}

/// With ping enabled, `oslo_rpc_server_ping` answers "pong"; without, NoSuchMethod.
pub async fn ping_endpoint(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    for enabled in [true, false] {
        let topic = unique("ping");
        let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("s"))
            .endpoint(Endpoint::new().method("x", |_c: Context, _: Value| async {
                Ok::<_, RemoteError>(())
            }))
            .ping(enabled)
            .start()
            .await?;
        let client =
            RpcClient::new(&transport, Target::topic(topic)).timeout(Duration::from_secs(5));
        let reply = client
            .call::<_, String>(&ctx(), "oslo_rpc_server_ping", json!({}))
            .await;
        match (enabled, reply) {
            (true, Ok(pong)) => assert_eq!(pong, "pong"),
            (false, Err(Error::Remote(r))) => {
                assert!(r.is("oslo_messaging.rpc.dispatcher", "NoSuchMethod"))
            }
            (_, other) => panic!("ping enabled={enabled}: {other:?}"),
        }
        server.stop().await?;
        server.wait().await?;
    }
    Ok(())
}

/// A client's version cap refuses higher versions (and a missing version) before sending.
pub async fn version_cap(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let client = RpcClient::new(&transport, Target::topic(unique("cap"))).version_cap("1.5");
    assert!(client.can_send_version(Some("1.5"))?);
    assert!(!client.can_send_version(Some("1.6"))?);
    assert!(!client.can_send_version(Some("2.0"))?);
    let err = client
        .prepare()
        .version("1.6")
        .cast(&ctx(), "x", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::VersionCap { .. }), "{err:?}");
    let err = client.cast(&ctx(), "x", json!({})).await.unwrap_err();
    assert!(
        matches!(err, Error::VersionCap { .. }),
        "a cap with no version is refused: {err:?}"
    );
    let err = client
        .prepare()
        .version("x.y")
        .cast(&ctx(), "x", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidVersion { .. }), "{err:?}");
    let err = RpcClient::new(&transport, Target::default())
        .cast(&ctx(), "x", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidTarget { .. }), "{err:?}");
    let err = RpcClient::new(&transport, Target::topic("t").fanout(true))
        .call::<_, Value>(&ctx(), "x", json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidTarget { .. }),
        "a fanout call is refused: {err:?}"
    );
    Ok(())
}

/// The caller's context reaches the endpoint, with `client_timeout` added.
pub async fn context_reaches_endpoint(factory: &TransportFactory) -> Result<()> {
    let transport = factory.transport().await?;
    let topic = unique("context");
    let endpoint = Endpoint::new().method("whoami", |c: Context, _: Value| async move {
        Ok::<_, RemoteError>(c)
    });
    let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("s"))
        .endpoint(endpoint)
        .start()
        .await?;
    let client = RpcClient::new(&transport, Target::topic(topic)).timeout(Duration::from_secs(5));
    let seen: Context = client
        .call(
            &Context::new().with("user", "alice").with("project", "p1"),
            "whoami",
            json!({}),
        )
        .await?;
    assert_eq!(seen.get("user"), Some(&json!("alice")));
    assert_eq!(seen.get("project"), Some(&json!("p1")));
    assert_eq!(seen.get("client_timeout"), Some(&Value::Null));
    let seen: Context = client
        .prepare()
        .call_monitor_timeout(Duration::from_secs(4))
        .call(&Context::new(), "whoami", json!({}))
        .await?;
    assert_eq!(seen.get("client_timeout"), Some(&json!(4)));
    server.stop().await?;
    server.wait().await
}
