//! W3C trace context between Python oslo.messaging, instrumented with
//! `opentelemetry-instrumentation-oslo-messaging` (spans exported to an in-memory
//! exporter that the peer prints), and Rust services over RabbitMQ: one trace from a
//! Python caller through a Rust server into a Python server, and from a Rust caller
//! through a Python server back into a Rust server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use messaging::telemetry::{TraceContext, current_trace};
use messaging::{Context, Endpoint, RemoteError, RpcClient, RpcServer, Target, Transport};
use serde_json::{Value, json};

use crate::common::{Peer, args, run_peer, setup, unique};

const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A span the Python peer printed.
#[derive(Debug, Clone)]
struct PySpan {
    name: String,
    kind: String,
    trace_id: String,
    span_id: String,
    parent_span_id: Option<String>,
}

fn py_span(line: &Value) -> Option<PySpan> {
    let span = line.get("span")?;
    let text = |key: &str| span[key].as_str().map(str::to_string);
    Some(PySpan {
        name: text("name")?,
        kind: text("kind")?,
        trace_id: text("trace_id")?,
        span_id: text("span_id")?,
        parent_span_id: text("parent_span_id"),
    })
}

/// The span named `name` among a peer's lines.
fn find_span(lines: &[Value], name: &str) -> PySpan {
    lines
        .iter()
        .filter_map(py_span)
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name:?} among {lines:#?}"))
}

/// Reads a server peer's lines until it printed the span `name`.
async fn span_of(peer: &mut Peer, name: &str, seen: &mut Vec<Value>) -> PySpan {
    loop {
        let line = peer.next_with("span", seen).await;
        seen.push(line.clone());
        if let Some(span) = py_span(&line).filter(|s| s.name == name) {
            return span;
        }
    }
}

/// A Rust server whose method `forward` calls `method` on `to` with the context it
/// was given, as OpenStack services pass `ctxt` along, and whose method `trace`
/// answers the trace context it runs under.
async fn rust_server(
    transport: &Transport,
    topic: &str,
    to: Option<String>,
    seen: Arc<Mutex<Vec<Option<TraceContext>>>>,
) -> RpcServer {
    let downstream = to.map(|t| RpcClient::new(transport, Target::topic(t)).timeout(CALL_TIMEOUT));
    let endpoint = Endpoint::new()
        .method("forward", move |ctx: Context, v: Value| {
            let downstream = downstream.clone();
            async move {
                let downstream = downstream.expect("a downstream to forward to");
                downstream
                    .call::<_, Value>(&ctx, "add", v)
                    .await
                    .map_err(|e| RemoteError::runtime_error(e.to_string()))
            }
        })
        .method("trace", move |_ctx: Context, _: Value| {
            let seen = seen.clone();
            async move {
                let trace = current_trace();
                seen.lock().unwrap().push(trace.clone());
                Ok::<_, RemoteError>(trace.map(|t| t.traceparent()))
            }
        });
    RpcServer::new(transport, Target::topic(topic.to_string()).server("rs1"))
        .endpoint(endpoint)
        .start()
        .await
        .expect("Rust server")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_trace_goes_on_through_a_rust_server_into_a_python_server() {
    let s = setup().await;
    let (rust_topic, py_topic) = (unique("trace-rs"), unique("trace-py"));
    let mut python_server = Peer::server(&s.url, &py_topic, "py1", &["--otel"]).await;
    let server = rust_server(
        &s.transport,
        &rust_topic,
        Some(py_topic.clone()),
        Arc::default(),
    )
    .await;

    // Python client -> Rust server (forward) -> Python server (add).
    let run = run_peer(&args([
        "call",
        "--otel",
        "--url",
        &s.url,
        "--topic",
        &rust_topic,
        "--timeout",
        "60",
        "--context",
        r#"{"request_id": "req-trace-1"}"#,
        "forward",
        r#"{"a": 2, "b": 3}"#,
    ]))
    .await;
    let result = run
        .lines
        .iter()
        .find_map(|l| l.get("result"))
        .unwrap_or_else(|| panic!("no result: {run:#?}"));
    assert_eq!(result, &json!(5));
    let client_span = find_span(&run.lines, "forward send");
    assert_eq!(client_span.kind, "PRODUCER");

    let mut seen = Vec::new();
    let request = python_server.next_with("method", &mut seen).await;
    let received = span_of(&mut python_server, "add receive", &mut seen).await;
    // The Python server's request carried the Rust hop's traceparent: the Python
    // caller's trace, and a span of the Rust service as parent.
    let hop = TraceContext::parse(
        request["ctxt"]["traceparent"]
            .as_str()
            .unwrap_or_else(|| panic!("no traceparent in {request}")),
        None,
    )
    .expect("a valid traceparent");
    assert_eq!(hop.trace_id(), client_span.trace_id);
    assert_ne!(
        hop.span_id(),
        client_span.span_id,
        "the Rust hop has its own span"
    );
    assert_eq!(request["ctxt"]["request_id"], "req-trace-1");
    assert_eq!(received.trace_id, client_span.trace_id, "one trace");
    assert_eq!(
        received.parent_span_id.as_deref(),
        Some(hop.span_id().as_str())
    );
    assert_eq!(received.kind, "CONSUMER");

    server.stop().await;
    server.wait().await.expect("Rust server drained");
    python_server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_trace_goes_on_through_a_python_server_back_into_rust() {
    let s = setup().await;
    let (rust_topic, py_topic) = (unique("trace-back-rs"), unique("trace-back-py"));
    let mut python_server = Peer::server(&s.url, &py_topic, "py1", &["--otel"]).await;
    let seen_by_rust = Arc::new(Mutex::new(Vec::new()));
    let server = rust_server(&s.transport, &rust_topic, None, seen_by_rust.clone()).await;

    // A Rust service that is itself inside a trace (its caller's traceparent) calls the
    // Python server, which relays to the Rust server.
    let upstream = TraceContext::parse(
        "00-5b8aa5a2d2c872e8321cf37308d69df2-051581bf3cb55c13-01",
        None,
    )
    .unwrap();
    let mut ctx = Context::new().with("request_id", "req-trace-2");
    upstream.inject(&mut ctx.0);
    let client =
        RpcClient::new(&s.transport, Target::topic(py_topic.clone())).timeout(CALL_TIMEOUT);
    let answered: Value = client
        .call(
            &ctx,
            "relay",
            json!({"topic": rust_topic, "method": "trace", "args": {}}),
        )
        .await
        .expect("relay through Python");

    let mut seen = Vec::new();
    let received = span_of(&mut python_server, "relay receive", &mut seen).await;
    assert_eq!(
        received.trace_id,
        upstream.trace_id(),
        "Python joined the Rust trace"
    );
    assert_eq!(
        received.parent_span_id.as_deref(),
        Some(upstream.span_id().as_str())
    );
    // The relay's own call ended (and was printed) before its request did.
    let relayed = find_span(&seen, "trace send");
    assert_eq!(relayed.trace_id, upstream.trace_id());
    assert_eq!(
        relayed.parent_span_id.as_deref(),
        Some(received.span_id.as_str())
    );

    // The Rust server ran under the Python relay's span, in the same trace.
    let in_rust = seen_by_rust.lock().unwrap().clone();
    let in_rust = in_rust
        .first()
        .cloned()
        .flatten()
        .expect("the Rust server got a trace context");
    assert_eq!(in_rust.trace_id(), upstream.trace_id());
    assert_eq!(in_rust.span_id(), relayed.span_id);
    assert_eq!(answered, json!(in_rust.traceparent()));

    server.stop().await;
    server.wait().await.expect("Rust server drained");
    python_server.stop().await;
}
