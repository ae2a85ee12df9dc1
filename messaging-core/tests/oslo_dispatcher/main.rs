//! oslo.messaging's `tests/rpc/test_dispatcher.py` (TestDispatcher, the access
//! policies, TestDispatcherWithPingEndpoint, TestSerializer) against
//! `rpc::Dispatcher`, plus `tests/rpc/test_client.py`'s TestVersionCap,
//! TestCanSendVersion and the call/cast target errors against `RpcClient` on a memory
//! transport.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use messaging_core::rpc::dispatcher::{PING_METHOD, failure_of};
use messaging_core::rpc::{AccessPolicy, Dispatcher, Endpoint, RpcServer};
use messaging_core::wire::Request;
use messaging_core::wire::request::new_id;
use messaging_core::{
    Config, Context, DriverRegistry, Error, NoOpSerializer, RemoteError, Result, RpcClient,
    Serializer, Target, Transport,
};
use serde_json::{Map, Value, json};

mod access_policy;
mod client;
mod dispatcher;
mod failures;
mod ping;
mod serializer;

/// One call of a fake endpoint method: (endpoint index, method, context, args).
type Call = (usize, &'static str, Value, Value);
type Calls = Arc<Mutex<Vec<Call>>>;

fn recorder(
    calls: &Calls,
    index: usize,
    name: &'static str,
) -> impl Fn(Context, Map<String, Value>) -> std::future::Ready<std::result::Result<Value, RemoteError>>
+ Send
+ Sync
+ 'static {
    let calls = calls.clone();
    move |ctx: Context, args: Map<String, Value>| {
        calls
            .lock()
            .unwrap()
            .push((index, name, Value::Object(ctx.0), Value::Object(args)));
        std::future::ready(Ok(json!({"endpoint": index, "method": name})))
    }
}

/// oslo's fake endpoint: `foo` (plain), `bar` (`@rpc.expose`), `_foobar` (private).
fn fake_endpoint(base: Endpoint, index: usize, calls: &Calls) -> Endpoint {
    base.method("foo", recorder(calls, index, "foo"))
        .exposed_method("bar", recorder(calls, index, "bar"))
        .method("_foobar", recorder(calls, index, "_foobar"))
}

/// An endpoint's `Target(...)` kwargs.
#[derive(Clone, Copy, Default)]
struct Ep {
    namespace: Option<&'static str>,
    version: Option<&'static str>,
    legacy_namespaces: &'static [&'static str],
}

const DEFAULT_TARGET: Ep = Ep {
    namespace: None,
    version: None,
    legacy_namespaces: &[],
};

fn ns(namespace: &'static str) -> Ep {
    Ep {
        namespace: Some(namespace),
        ..DEFAULT_TARGET
    }
}

fn ver(version: &'static str) -> Ep {
    Ep {
        version: Some(version),
        ..DEFAULT_TARGET
    }
}

impl Ep {
    fn build(self) -> Endpoint {
        let mut ep = Endpoint::new();
        if let Some(n) = self.namespace {
            ep = ep.namespace(n);
        }
        if let Some(v) = self.version {
            ep = ep.version(v);
        }
        if !self.legacy_namespaces.is_empty() {
            ep = ep.legacy_namespaces(self.legacy_namespaces.iter().copied());
        }
        ep
    }
}

#[derive(Debug)]
enum Expect {
    /// Success, dispatched to (endpoint index, method).
    Dispatched(usize, &'static str),
    NoSuchMethod,
    /// UnsupportedVersion with this version.
    Unsupported(&'static str),
}

/// Builds the request from oslo's message dict (`method`, `args`, `namespace`,
/// `version`), dispatches it and checks the outcome and every endpoint call.
async fn check(
    endpoints: &[Ep],
    policy: Option<AccessPolicy>,
    msg: Value,
    ctxt: Value,
    expect: Expect,
) {
    let calls: Calls = Arc::default();
    let endpoints = endpoints
        .iter()
        .enumerate()
        .map(|(i, ep)| fake_endpoint(ep.build(), i, &calls))
        .collect();
    let dispatcher = Dispatcher::new(
        endpoints,
        policy.unwrap_or_default(),
        Arc::new(NoOpSerializer),
        false,
    )
    .unwrap();

    let method = msg["method"].as_str().unwrap();
    let args = msg.get("args").cloned().unwrap_or(json!({}));
    let mut request = Request::new(
        method,
        args.as_object().unwrap().clone(),
        Context::from_value(ctxt.clone()).unwrap(),
    );
    request.namespace = msg
        .get("namespace")
        .and_then(Value::as_str)
        .map(str::to_string);
    request.version = msg
        .get("version")
        .and_then(Value::as_str)
        .map(str::to_string);

    let outcome = dispatcher.dispatch(request.clone()).await;
    let calls = calls.lock().unwrap().clone();
    match expect {
        Expect::Dispatched(index, name) => {
            assert_eq!(outcome.unwrap(), json!({"endpoint": index, "method": name}));
            assert_eq!(
                calls,
                vec![(index, name, ctxt, args)],
                "exactly one call, with (ctxt, **args)"
            );
        }
        Expect::NoSuchMethod => {
            match outcome {
                Err(Error::NoSuchMethod { method: m }) => assert_eq!(m, method),
                other => panic!("expected NoSuchMethod, got {other:?}"),
            }
            assert_eq!(calls, vec![], "no endpoint method runs");
        }
        Expect::Unsupported(version) => {
            match outcome {
                Err(Error::UnsupportedVersion {
                    version: v,
                    method: m,
                }) => {
                    assert_eq!(v, version);
                    assert_eq!(m, method);
                }
                other => panic!("expected UnsupportedVersion, got {other:?}"),
            }
            assert_eq!(calls, vec![], "no endpoint method runs");
        }
    }
}

async fn memory_transport() -> Transport {
    DriverRegistry::with_memory()
        .transport(
            &format!("memory:///client_{}", new_id()),
            &Config::default(),
        )
        .await
        .unwrap()
}
