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

// ---------------------------------------------------------------------------------
// TestDispatcher
// ---------------------------------------------------------------------------------

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

#[tokio::test]
async fn no_endpoints() {
    check(
        &[],
        None,
        json!({"method": "foo"}),
        json!({}),
        Expect::Unsupported("1.0"),
    )
    .await;
}

#[tokio::test]
async fn default_target() {
    check(
        &[DEFAULT_TARGET],
        None,
        json!({"method": "foo"}),
        json!({}),
        Expect::Dispatched(0, "foo"),
    )
    .await;
}

#[tokio::test]
async fn default_target_ctxt_and_args() {
    check(
        &[DEFAULT_TARGET],
        Some(AccessPolicy::Legacy),
        json!({"method": "bar", "args": {"blaa": true}}),
        json!({"user": "bob"}),
        Expect::Dispatched(0, "bar"),
    )
    .await;
}

#[tokio::test]
async fn default_target_namespace() {
    check(
        &[DEFAULT_TARGET],
        Some(AccessPolicy::Legacy),
        json!({"method": "foo", "namespace": null}),
        json!({}),
        Expect::Dispatched(0, "foo"),
    )
    .await;
}

#[tokio::test]
async fn default_target_version() {
    check(
        &[DEFAULT_TARGET],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "version": "1.0"}),
        json!({}),
        Expect::Dispatched(0, "foo"),
    )
    .await;
}

#[tokio::test]
async fn default_target_no_such_method() {
    check(
        &[DEFAULT_TARGET],
        Some(AccessPolicy::Default),
        json!({"method": "foobar"}),
        json!({}),
        Expect::NoSuchMethod,
    )
    .await;
}

#[tokio::test]
async fn namespace() {
    check(
        &[DEFAULT_TARGET, ns("testns")],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "namespace": "testns"}),
        json!({}),
        Expect::Dispatched(1, "foo"),
    )
    .await;
}

#[tokio::test]
async fn namespace_mismatch() {
    check(
        &[DEFAULT_TARGET, ns("testns")],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "namespace": "nstest"}),
        json!({}),
        Expect::Unsupported("1.0"),
    )
    .await;
}

#[tokio::test]
async fn version() {
    check(
        &[ver("1.5"), ver("3.4")],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "version": "3.2"}),
        json!({}),
        Expect::Dispatched(1, "foo"),
    )
    .await;
}

#[tokio::test]
async fn version_mismatch() {
    check(
        &[ver("1.5"), ver("3.0")],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "version": "3.2"}),
        json!({}),
        Expect::Unsupported("3.2"),
    )
    .await;
}

// `message_in_null_namespace_with_multiple_namespaces` (legacy_namespaces=[None]) is
// not ported: `Endpoint::legacy_namespaces` takes names only, so the null namespace
// cannot be listed as a legacy namespace.

// oslo's rows 12 to 16 use legacy_namespaces ['second', None]; the None cannot be
// written here (see above) and plays no part in these rows' outcomes.
const MULTI_NS: Ep = Ep {
    namespace: Some("testns"),
    version: None,
    legacy_namespaces: &["second"],
};

#[tokio::test]
async fn message_in_wrong_namespace_with_multiple_namespaces() {
    check(
        &[MULTI_NS],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "namespace": "wrong"}),
        json!({}),
        Expect::Unsupported("1.0"),
    )
    .await;
}

#[tokio::test]
async fn message_in_legacy_namespace_with_multiple_namespaces() {
    check(
        &[MULTI_NS],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "namespace": "second"}),
        json!({}),
        Expect::Dispatched(0, "foo"),
    )
    .await;
}

#[tokio::test]
async fn message_with_endpoint_no_private_and_public_method() {
    check(
        &[MULTI_NS],
        Some(AccessPolicy::Default),
        json!({"method": "foo", "namespace": "testns"}),
        json!({}),
        Expect::Dispatched(0, "foo"),
    )
    .await;
}

#[tokio::test]
async fn message_with_endpoint_no_private_and_private_method() {
    check(
        &[MULTI_NS],
        Some(AccessPolicy::Default),
        json!({"method": "_foobar", "namespace": "testns"}),
        json!({}),
        Expect::NoSuchMethod,
    )
    .await;
}

#[tokio::test]
async fn message_with_endpoint_explicitly_exposed_without_exposed_method() {
    check(
        &[MULTI_NS],
        Some(AccessPolicy::Explicit),
        json!({"method": "foo", "namespace": "testns"}),
        json!({}),
        Expect::NoSuchMethod,
    )
    .await;
}

#[tokio::test]
async fn message_with_endpoint_explicitly_exposed_with_exposed_method() {
    check(
        &[MULTI_NS],
        Some(AccessPolicy::Explicit),
        json!({"method": "bar", "namespace": "testns"}),
        json!({}),
        Expect::Dispatched(0, "bar"),
    )
    .await;
}

/// The first compatible endpoint with the method wins, even when a later one also has it.
#[tokio::test]
async fn first_matching_endpoint_wins() {
    check(
        &[DEFAULT_TARGET, DEFAULT_TARGET],
        None,
        json!({"method": "foo"}),
        json!({}),
        Expect::Dispatched(0, "foo"),
    )
    .await;
}

// ---------------------------------------------------------------------------------
// Access policy matrix: policy x {foo (plain), bar (exposed), _foobar (private)}.
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn access_policy_matrix() {
    use AccessPolicy::{Default, Explicit, Legacy};
    let matrix: [(AccessPolicy, &str, bool); 9] = [
        (Default, "foo", true),
        (Default, "bar", true),
        (Default, "_foobar", false),
        (Explicit, "foo", false),
        (Explicit, "bar", true),
        (Explicit, "_foobar", false),
        (Legacy, "foo", true),
        (Legacy, "bar", true),
        (Legacy, "_foobar", true),
    ];
    for (policy, method, allowed) in matrix {
        let name: &'static str = match method {
            "foo" => "foo",
            "bar" => "bar",
            _ => "_foobar",
        };
        let expect = if allowed {
            Expect::Dispatched(0, name)
        } else {
            Expect::NoSuchMethod
        };
        check(
            &[DEFAULT_TARGET],
            Some(policy),
            json!({"method": method}),
            json!({}),
            expect,
        )
        .await;
    }
    assert_eq!(
        AccessPolicy::default(),
        AccessPolicy::Default,
        "policy None is the default policy"
    );
}

// ---------------------------------------------------------------------------------
// TestDispatcherWithPingEndpoint
// ---------------------------------------------------------------------------------

fn ping_request() -> Request {
    Request::new(PING_METHOD, Map::new(), Context::new())
}

#[tokio::test]
async fn dispatcher_with_ping() {
    let dispatcher = Dispatcher::new(
        vec![],
        AccessPolicy::Default,
        Arc::new(NoOpSerializer),
        true,
    )
    .unwrap();
    assert_eq!(
        dispatcher.dispatch(ping_request()).await.unwrap(),
        json!("pong")
    );
}

#[tokio::test]
async fn dispatcher_with_ping_already_used() {
    let endpoint = Endpoint::new().method(PING_METHOD, |_: Context, _: Map<String, Value>| async {
        Ok::<_, RemoteError>("not_pong")
    });
    let dispatcher = Dispatcher::new(
        vec![endpoint],
        AccessPolicy::Default,
        Arc::new(NoOpSerializer),
        true,
    )
    .unwrap();
    assert_eq!(
        dispatcher.dispatch(ping_request()).await.unwrap(),
        json!("not_pong")
    );
}

#[tokio::test]
async fn dispatcher_without_ping_by_default() {
    let dispatcher = Dispatcher::new(
        vec![],
        AccessPolicy::Default,
        Arc::new(NoOpSerializer),
        false,
    )
    .unwrap();
    match dispatcher.dispatch(ping_request()).await {
        Err(Error::UnsupportedVersion { version, method }) => {
            assert_eq!((version.as_str(), method.as_str()), ("1.0", PING_METHOD));
        }
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    assert!(
        !Config::default().default.rpc_ping_enabled,
        "rpc_ping_enabled defaults to False"
    );
}

/// The built-in ping endpoint has the default target: null namespace, version 1.0.
#[tokio::test]
async fn ping_endpoint_has_the_default_target() {
    let dispatcher = Dispatcher::new(
        vec![],
        AccessPolicy::Default,
        Arc::new(NoOpSerializer),
        true,
    )
    .unwrap();
    let mut request = ping_request();
    request.namespace = Some("other".into());
    assert!(matches!(
        dispatcher.dispatch(request.clone()).await,
        Err(Error::UnsupportedVersion { .. })
    ));
    let mut request = ping_request();
    request.version = Some("1.1".into());
    assert!(matches!(
        dispatcher.dispatch(request.clone()).await,
        Err(Error::UnsupportedVersion { .. })
    ));
}

/// `rpc_ping_enabled = True` in the config gives a server the ping endpoint.
#[tokio::test]
async fn server_answers_ping_when_enabled_in_config() {
    let mut config = Config::default();
    config.default.rpc_ping_enabled = true;
    let transport = DriverRegistry::with_memory()
        .transport(&format!("memory:///ping_{}", new_id()), &config)
        .await
        .unwrap();
    let server = RpcServer::new(&transport, Target::topic("testtopic").server("testserver"))
        .start()
        .await
        .unwrap();
    let client =
        RpcClient::new(&transport, Target::topic("testtopic")).timeout(Duration::from_secs(5));
    let pong: String = client
        .call(&Context::new(), PING_METHOD, json!({}))
        .await
        .unwrap();
    assert_eq!(pong, "pong");
    server.stop().await.unwrap();
    server.wait().await.unwrap();
}

// ---------------------------------------------------------------------------------
// TestSerializer (server side)
// ---------------------------------------------------------------------------------

/// oslo's mocked NoOpSerializer: deserialize_context returns `dctxt`,
/// deserialize_entity returns `'d' + x`, serialize_entity `'s' + x` (None when falsy).
#[derive(Default)]
struct MockSerializer {
    dctxt: Context,
    deserialize_context_calls: Mutex<Vec<Context>>,
    deserialize_entity_calls: Mutex<Vec<(Context, Value)>>,
    serialize_entity_calls: Mutex<Vec<(Context, Value)>>,
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

impl Serializer for MockSerializer {
    fn deserialize_context(&self, ctx: Context) -> Result<Context> {
        self.deserialize_context_calls.lock().unwrap().push(ctx);
        Ok(self.dctxt.clone())
    }

    fn deserialize_entity(&self, ctx: &Context, entity: Value) -> Result<Value> {
        self.deserialize_entity_calls
            .lock()
            .unwrap()
            .push((ctx.clone(), entity.clone()));
        Ok(json!(format!("d{}", entity.as_str().unwrap())))
    }

    fn serialize_entity(&self, ctx: &Context, entity: Value) -> Result<Value> {
        self.serialize_entity_calls
            .lock()
            .unwrap()
            .push((ctx.clone(), entity.clone()));
        Ok(if truthy(&entity) {
            json!(format!("s{}", entity.as_str().unwrap()))
        } else {
            Value::Null
        })
    }
}

async fn check_serializer(ctxt: Value, dctxt: Value, args: Value, retval: Value) {
    let serializer = Arc::new(MockSerializer {
        dctxt: Context::from_value(dctxt.clone()).unwrap(),
        ..Default::default()
    });
    let calls: Arc<Mutex<Vec<(Value, Value)>>> = Arc::default();
    let endpoint = {
        let calls = calls.clone();
        let retval = retval.clone();
        Endpoint::new().method("foo", move |ctx: Context, args: Map<String, Value>| {
            calls
                .lock()
                .unwrap()
                .push((Value::Object(ctx.0), Value::Object(args)));
            std::future::ready(Ok::<_, RemoteError>(retval.clone()))
        })
    };
    let dispatcher = Dispatcher::new(
        vec![endpoint],
        AccessPolicy::Default,
        serializer.clone(),
        false,
    )
    .unwrap();
    let request = Request::new(
        "foo",
        args.as_object().unwrap().clone(),
        Context::from_value(ctxt.clone()).unwrap(),
    );
    let result = dispatcher.dispatch(request.clone()).await.unwrap();

    let deserialized_args: Map<String, Value> = args
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), json!(format!("d{}", v.as_str().unwrap()))))
        .collect();
    assert_eq!(
        *calls.lock().unwrap(),
        vec![(dctxt.clone(), Value::Object(deserialized_args))]
    );
    let dctx = Context::from_value(dctxt).unwrap();
    assert_eq!(
        *serializer.deserialize_context_calls.lock().unwrap(),
        vec![Context::from_value(ctxt).unwrap()]
    );
    let expected_entity_calls: Vec<(Context, Value)> = args
        .as_object()
        .unwrap()
        .values()
        .map(|v| (dctx.clone(), v.clone()))
        .collect();
    assert_eq!(
        *serializer.deserialize_entity_calls.lock().unwrap(),
        expected_entity_calls
    );
    assert_eq!(
        *serializer.serialize_entity_calls.lock().unwrap(),
        vec![(dctx, retval.clone())]
    );
    if truthy(&retval) {
        assert_eq!(result, json!(format!("s{}", retval.as_str().unwrap())));
    } else {
        assert_eq!(result, Value::Null);
    }
}

#[tokio::test]
async fn serializer_no_args_or_retval() {
    check_serializer(json!({}), json!({}), json!({}), Value::Null).await;
}

#[tokio::test]
async fn serializer_args_and_retval() {
    check_serializer(
        json!({"user": "bob"}),
        json!({"user": "alice"}),
        json!({"a": "a", "b": "b", "c": "c"}),
        json!("d"),
    )
    .await;
}

// ---------------------------------------------------------------------------------
// failure_of: what a Python caller receives for dispatcher errors.
// ---------------------------------------------------------------------------------

#[test]
fn failure_of_no_such_method() {
    let failure = failure_of(Error::NoSuchMethod {
        method: "foobar".into(),
    });
    assert_eq!(
        failure.to_value(),
        json!({
            "class": "NoSuchMethod",
            "module": "oslo_messaging.rpc.dispatcher",
            "message": "Endpoint does not support RPC method foobar",
            "tb": [],
            "args": ["Endpoint does not support RPC method foobar"],
            "kwargs": {}
        })
    );
}

#[test]
fn failure_of_unsupported_version() {
    let failure = failure_of(Error::UnsupportedVersion {
        version: "3.2".into(),
        method: "foo".into(),
    });
    assert_eq!(
        failure.to_value(),
        json!({
            "class": "UnsupportedVersion",
            "module": "oslo_messaging.rpc.dispatcher",
            "message": "Endpoint does not support RPC version 3.2. Attempted method: foo",
            "tb": [],
            "args": ["Endpoint does not support RPC version 3.2. Attempted method: foo"],
            "kwargs": {}
        })
    );
}

#[test]
fn failure_of_remote_error_is_unchanged() {
    let original = RemoteError::value_error("boom").with_traceback(vec!["line\n".into()]);
    assert_eq!(
        failure_of(Error::Remote(Box::new(original.clone()))),
        original
    );
}

/// End to end: a caller of a missing method gets oslo's NoSuchMethod failure.
#[tokio::test]
async fn caller_receives_no_such_method_and_unsupported_version() {
    let transport = memory_transport().await;
    let endpoint = Endpoint::new().method("foo", |_: Context, _: Map<String, Value>| async {
        Ok::<_, RemoteError>(1)
    });
    let server = RpcServer::new(&transport, Target::topic("testtopic").server("testserver"))
        .endpoint(endpoint)
        .start()
        .await
        .unwrap();
    let client =
        RpcClient::new(&transport, Target::topic("testtopic")).timeout(Duration::from_secs(5));
    match client
        .call::<_, Value>(&Context::new(), "foobar", json!({}))
        .await
    {
        Err(Error::Remote(f)) => {
            assert!(
                f.is("oslo_messaging.rpc.dispatcher", "NoSuchMethod"),
                "{f:?}"
            );
            assert_eq!(f.message, "Endpoint does not support RPC method foobar");
        }
        other => panic!("expected a NoSuchMethod failure, got {other:?}"),
    }
    match client
        .prepare()
        .version("2.0")
        .call::<_, Value>(&Context::new(), "foo", json!({}))
        .await
    {
        Err(Error::Remote(f)) => {
            assert!(
                f.is("oslo_messaging.rpc.dispatcher", "UnsupportedVersion"),
                "{f:?}"
            );
            assert_eq!(
                f.message,
                "Endpoint does not support RPC version 2.0. Attempted method: foo"
            );
        }
        other => panic!("expected an UnsupportedVersion failure, got {other:?}"),
    }
    server.stop().await.unwrap();
    server.wait().await.unwrap();
}

// ---------------------------------------------------------------------------------
// test_client.py: TestVersionCap, TestCanSendVersion, call/cast target errors.
// ---------------------------------------------------------------------------------

const TOPIC: &str = "testtopic";

async fn memory_transport() -> Transport {
    DriverRegistry::with_memory()
        .transport(
            &format!("memory:///client_{}", new_id()),
            &Config::default(),
        )
        .await
        .unwrap()
}

/// A `prepare(version_cap=...)` argument.
#[derive(Clone, Copy)]
enum Cap {
    /// Not passed.
    Keep,
    /// `version_cap=X`.
    Set(&'static str),
    /// `version_cap=None`.
    Clear,
}

struct ClientRow {
    ctor_cap: Option<&'static str>,
    prepare_cap: Cap,
    ctor_version: Option<&'static str>,
    prepare_version: Option<&'static str>,
}

fn client_for(transport: &Transport, row: &ClientRow) -> RpcClient {
    let mut target = Target::topic(TOPIC);
    if let Some(v) = row.ctor_version {
        target = target.version(v);
    }
    let mut client = RpcClient::new(transport, target).timeout(Duration::from_secs(5));
    if let Some(cap) = row.ctor_cap {
        client = client.version_cap(cap);
    }
    match row.prepare_cap {
        Cap::Keep => {}
        Cap::Set(cap) => client = client.prepare().version_cap(cap),
        // RpcClient::prepare() has no way to clear a cap (oslo's
        // `prepare(version_cap=None)`); the prepared client oslo gets is the one
        // without a cap.
        Cap::Clear => {
            client =
                RpcClient::new(transport, client.target().clone()).timeout(Duration::from_secs(5));
        }
    }
    if let Some(v) = row.prepare_version {
        client = client.prepare().version(v);
    }
    client
}

#[derive(Clone, Copy, PartialEq)]
enum How {
    Call,
    Cast,
}

/// Sends `foo` with no arguments and returns what a server on the topic received
/// (`None` if nothing arrived) along with the send's outcome.
async fn send_foo(
    transport: &Transport,
    client: &RpcClient,
    how: How,
) -> (Result<()>, Option<Request>) {
    let mut listener = transport
        .driver()
        .listen(&Target::topic(TOPIC).server("testserver"))
        .await
        .unwrap();
    let mut server = tokio::spawn(async move {
        let incoming = listener.next().await?;
        if let Some(responder) = incoming.responder {
            responder.reply(Ok(Value::Null)).await.unwrap();
        }
        Some(incoming.request.decode().unwrap())
    });
    let outcome = match how {
        How::Call => client
            .call::<_, Value>(&Context::new(), "foo", json!({}))
            .await
            .map(drop),
        How::Cast => client.cast(&Context::new(), "foo", json!({})).await,
    };
    let received = match tokio::time::timeout(Duration::from_millis(200), &mut server).await {
        Ok(joined) => joined.unwrap(),
        Err(_) => {
            server.abort();
            None
        }
    };
    (outcome, received)
}

async fn check_version_cap(
    row: ClientRow,
    how: How,
    expected: std::result::Result<Option<&str>, (&str, &str)>,
) {
    let transport = memory_transport().await;
    let client = client_for(&transport, &row);
    let (outcome, received) = send_foo(&transport, &client, how).await;
    match expected {
        Ok(version) => {
            outcome.unwrap();
            let request = received.expect("the message was sent");
            assert_eq!(request.method, "foo");
            assert!(request.args.is_empty());
            assert_eq!(request.namespace, None);
            assert_eq!(request.version.as_deref(), version);
            assert_eq!(request.reply.is_some(), how == How::Call);
        }
        Err((version, cap)) => {
            match outcome {
                Err(Error::VersionCap {
                    version: v,
                    version_cap: c,
                }) => assert_eq!((v.as_str(), c.as_str()), (version, cap)),
                other => panic!("expected Error::VersionCap, got {other:?}"),
            }
            assert!(received.is_none(), "nothing is sent");
        }
    }
}

macro_rules! version_cap_rows {
    ($($name:ident: ($ctor_cap:expr, $prepare_cap:expr, $ctor_version:expr, $prepare_version:expr) => $expected:expr;)*) => {
        mod version_cap {
            use super::*;
            $(
                pub mod $name {
                    use super::*;
                    fn row() -> ClientRow {
                        ClientRow {
                            ctor_cap: $ctor_cap,
                            prepare_cap: $prepare_cap,
                            ctor_version: $ctor_version,
                            prepare_version: $prepare_version,
                        }
                    }
                    #[tokio::test]
                    async fn call() {
                        check_version_cap(row(), How::Call, $expected).await;
                    }
                    #[tokio::test]
                    async fn cast() {
                        check_version_cap(row(), How::Cast, $expected).await;
                    }
                }
            )*
        }
    };
}

version_cap_rows! {
    all_none: (None, Cap::Keep, None, None) => Ok(None);
    ctor_cap_ok: (Some("1.1"), Cap::Keep, Some("1.0"), None) => Ok(Some("1.0"));
    ctor_cap_override_ok: (Some("2.0"), Cap::Set("1.1"), Some("1.0"), Some("1.0")) => Ok(Some("1.0"));
    ctor_cap_override_none_ok: (Some("1.1"), Cap::Clear, Some("1.0"), None) => Ok(Some("1.0"));
    ctor_cap_minor_fail: (Some("1.0"), Cap::Keep, Some("1.1"), None) => Err(("1.1", "1.0"));
    ctor_cap_major_fail: (Some("2.0"), Cap::Keep, None, Some("1.0")) => Err(("1.0", "2.0"));
    ctor_cap_none_version_ok: (None, Cap::Keep, Some("1.0"), None) => Ok(Some("1.0"));
    ctor_cap_version_none_fail: (Some("1.0"), Cap::Keep, None, None) => Err(("None", "1.0"));
}

/// The argument of oslo's `can_send_version`.
#[derive(Clone, Copy)]
enum Arg {
    /// `can_send_version()`: the prepared target's version (`can_send_target_version`).
    Absent,
    /// `can_send_version(version=X)`, X possibly None.
    Given(Option<&'static str>),
}

/// Checks one TestCanSendVersion row; with an argument, `client.prepare()` answers
/// the same.
fn check_can_send(row: ClientRow, arg: Arg, expected: bool, transport: &Transport) {
    let client = client_for(transport, &row);
    match arg {
        Arg::Absent => assert_eq!(client.can_send_target_version().unwrap(), expected),
        Arg::Given(version) => {
            assert_eq!(client.can_send_version(version).unwrap(), expected);
            assert_eq!(
                client.prepare().can_send_version(version).unwrap(),
                expected
            );
        }
    }
}

macro_rules! can_send_rows {
    ($($name:ident: ($ctor_cap:expr, $prepare_cap:expr, $ctor_version:expr, $prepare_version:expr), $arg:expr => $expected:expr;)*) => {
        mod can_send_version {
            use super::*;
            $(
                #[tokio::test]
                async fn $name() {
                    let row = ClientRow {
                        ctor_cap: $ctor_cap,
                        prepare_cap: $prepare_cap,
                        ctor_version: $ctor_version,
                        prepare_version: $prepare_version,
                    };
                    check_can_send(row, $arg, $expected, &memory_transport().await);
                }
            )*
        }
    };
}

can_send_rows! {
    all_none: (None, Cap::Keep, None, None), Arg::Absent => true;
    ctor_cap_ok: (Some("1.1"), Cap::Keep, Some("1.0"), None), Arg::Absent => true;
    ctor_cap_override_ok: (Some("2.0"), Cap::Set("1.1"), Some("1.0"), Some("1.0")), Arg::Absent => true;
    ctor_cap_override_none_ok: (Some("1.1"), Cap::Clear, Some("1.0"), None), Arg::Absent => true;
    ctor_cap_can_send_ok: (Some("1.1"), Cap::Clear, Some("1.0"), None), Arg::Given(Some("1.1")) => true;
    ctor_cap_can_send_none_ok: (Some("1.1"), Cap::Clear, Some("1.0"), None), Arg::Given(None) => true;
    ctor_cap_minor_fail: (Some("1.0"), Cap::Keep, Some("1.1"), None), Arg::Absent => false;
    ctor_cap_major_fail: (Some("2.0"), Cap::Keep, None, Some("1.0")), Arg::Absent => false;
    ctor_cap_none_version_ok: (None, Cap::Keep, Some("1.0"), None), Arg::Absent => true;
    ctor_cap_version_none_fail: (Some("1.0"), Cap::Keep, None, None), Arg::Absent => false;
    // The explicit None is checked, not the target's 1.0.
    ctor_cap_version_can_send_none_fail: (Some("1.0"), Cap::Keep, Some("1.0"), None), Arg::Given(None) => false;
}

/// test_invalid_version_type: versions that are not `major.minor[.rev]` integers are
/// refused (oslo refuses them in `prepare`; here the send refuses them) and nothing
/// is sent.
#[tokio::test]
async fn invalid_version_type() {
    for bad in ["5", "5.a", "5.5.a"] {
        let transport = memory_transport().await;
        let client = RpcClient::new(&transport, Target::topic(TOPIC))
            .prepare()
            .version(bad);
        let (outcome, received) = send_foo(&transport, &client, How::Cast).await;
        match outcome {
            Err(Error::InvalidVersion { version }) => assert_eq!(version, bad),
            other => panic!("{bad}: expected InvalidVersion, got {other:?}"),
        }
        assert!(received.is_none());
        let capped = RpcClient::new(&transport, Target::topic(TOPIC)).version_cap("5.0");
        assert!(matches!(
            capped.can_send_version(Some(bad)),
            Err(Error::InvalidVersion { .. })
        ));
    }
}

/// TestCallFanout: a call to a fanout target is refused before sending.
#[tokio::test]
async fn call_fanout() {
    let transport = memory_transport().await;
    let base = RpcClient::new(&transport, Target::topic(TOPIC)).timeout(Duration::from_secs(5));
    let fanout_target = RpcClient::new(&transport, Target::topic(TOPIC).fanout(true))
        .timeout(Duration::from_secs(5));
    for (scenario, client) in [
        ("target", fanout_target.clone()),
        ("prepare", base.prepare().fanout(true)),
        ("both", fanout_target.prepare().fanout(true)),
    ] {
        let (outcome, received) = send_foo(&transport, &client, How::Call).await;
        match outcome {
            Err(Error::InvalidTarget { reason, .. }) => {
                assert!(reason.contains("fanout"), "{scenario}: {reason}")
            }
            other => panic!("{scenario}: expected InvalidTarget, got {other:?}"),
        }
        assert!(received.is_none(), "{scenario}: nothing is sent");
    }
}

/// Transport._send: a topic is required to send.
#[tokio::test]
async fn cast_and_call_need_a_topic() {
    let transport = memory_transport().await;
    let client = RpcClient::new(&transport, Target::default()).timeout(Duration::from_secs(5));
    for outcome in [
        client.cast(&Context::new(), "foo", json!({})).await,
        client
            .call::<_, Value>(&Context::new(), "foo", json!({}))
            .await
            .map(drop),
    ] {
        match outcome {
            Err(Error::InvalidTarget { reason, .. }) => {
                assert!(reason.contains("topic"), "{reason}")
            }
            other => panic!("expected InvalidTarget, got {other:?}"),
        }
    }
}
