//! RPC scenarios (oslo's `test_functional` call/cast cases and `TestMultipleServers`).
//!
//! One module per area (calls, casts, the multiple-servers matrix, a server's life, what
//! reaches an endpoint), the fixtures they share here; every scenario is re-exported
//! from this module, as `testkit::rpc::call_specific_server` and so on.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ARRIVAL_LIMIT, TransportFactory, eventually, unique};
use crate::rpc::{AccessPolicy, Endpoint, RpcServer};
use crate::{Context, Error, RemoteError, Result, RpcClient, Serializer, Target, Transport};

mod call;
mod cast;
mod dispatch;
mod matrix;
mod server;

pub use call::{
    call_different_exchanges, call_exception, call_server_in_group, call_specific_server,
    call_timeout, call_timeout_with_concurrent_calls, mandatory_call, monitor_long_call,
};
pub use cast::{cast_fanout, cast_server_in_group, cast_specific_server};
pub use dispatch::{
    context_reaches_endpoint, endpoint_version_namespace, ping_endpoint, private_methods_refused,
    serializer_round_trip, version_cap,
};
pub use matrix::multiple_servers_matrix;
pub use server::{bad_endpoint, concurrency_limit, server_restart, server_stop_drains_in_flight};

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

    /// Waits (up to the arrival limit) until the servers have handled `expected_total`
    /// requests in all: casts give no other sign of arrival.
    async fn settle(&self, expected_total: usize) {
        eventually(|| self.calls().iter().sum::<usize>() >= expected_total).await;
    }

    /// Whether every server of the group has taken at least one request.
    fn every_server_served(&self) -> bool {
        self.calls().iter().all(|c| *c > 0)
    }

    fn calls(&self) -> Vec<usize> {
        self.states
            .iter()
            .map(|s| s.lock().unwrap().calls)
            .collect()
    }

    async fn stop(self) -> Result<()> {
        for s in &self.servers {
            s.stop().await;
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
