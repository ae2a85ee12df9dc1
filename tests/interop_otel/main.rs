//! OpenTelemetry across Python and Rust (feature `opentelemetry`): the Rust spans,
//! recorded by a tracing-opentelemetry layer into an in-memory exporter, sit in the
//! traces of Python oslo.messaging instrumented with
//! `opentelemetry-instrumentation-oslo-messaging` (whose peer prints its own in-memory
//! exporter's spans): a Python caller's span is the parent of the Rust server's span,
//! and a Rust caller's span the parent of the Python server's. Over RabbitMQ.
#![cfg(feature = "opentelemetry")]

#[path = "../common/mod.rs"]
#[allow(unused_imports)] // the notification helpers are not used here
mod common;

use std::sync::OnceLock;
use std::time::Duration;

use messaging::{Context, Endpoint, RemoteError, RpcClient, RpcServer, Target};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use common::{Peer, args, run_peer, setup, unique};

const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The process's exporter: the tracing subscriber is process-wide, installed once.
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        tracing_subscriber::registry()
            .with(messaging::opentelemetry::layer(&provider))
            .init();
        // Kept for the life of the process: spans are exported as they end.
        std::mem::forget(provider);
        exporter
    })
}

/// The finished Rust span named `name` whose attributes include `topic` as
/// `messaging.destination.name` or whose trace is `trace_id`.
fn rust_span(name: &str, trace_id: &str) -> SpanData {
    let spans = exporter().get_finished_spans().expect("finished spans");
    spans
        .iter()
        .find(|s| s.name == name && format!("{:032x}", s.span_context.trace_id()) == trace_id)
        .cloned()
        .unwrap_or_else(|| {
            let names: Vec<_> = spans
                .iter()
                .map(|s| {
                    (
                        s.name.to_string(),
                        format!("{:032x}", s.span_context.trace_id()),
                    )
                })
                .collect();
            panic!("no Rust span {name:?} in trace {trace_id}; finished: {names:?}")
        })
}

fn hex_span(id: opentelemetry::trace::SpanId) -> String {
    format!("{id:016x}")
}

/// A span the Python peer printed: (name, trace id, span id, parent span id).
fn py_span(line: &Value) -> Option<(String, String, String, Option<String>)> {
    let span = line.get("span")?;
    let text = |k: &str| span[k].as_str().map(str::to_string);
    Some((
        text("name")?,
        text("trace_id")?,
        text("span_id")?,
        text("parent_span_id"),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_caller_s_span_is_the_parent_of_the_rust_server_s() {
    exporter();
    let s = setup().await;
    let topic = unique("otel-rs");
    let server = RpcServer::new(&s.transport, Target::topic(topic.clone()).server("rs1"))
        .endpoint(
            Endpoint::new().method("add", |_c: Context, v: Value| async move {
                Ok::<_, RemoteError>(v["a"].as_i64().unwrap_or(0) + v["b"].as_i64().unwrap_or(0))
            }),
        )
        .start()
        .await
        .expect("Rust server");
    let run = run_peer(&args([
        "call",
        "--otel",
        "--url",
        &s.url,
        "--topic",
        &topic,
        "--timeout",
        "60",
        "add",
        r#"{"a": 40, "b": 2}"#,
    ]))
    .await;
    assert_eq!(
        run.lines.iter().find_map(|l| l.get("result")),
        Some(&json!(42)),
        "{run:#?}"
    );
    let (_, trace_id, python_span, _) = run
        .lines
        .iter()
        .filter_map(py_span)
        .find(|s| s.0 == "add send")
        .unwrap_or_else(|| panic!("no Python span: {run:#?}"));
    server.stop().await;
    server.wait().await.expect("Rust server drained");

    let received = rust_span("add receive", &trace_id);
    assert_eq!(hex_span(received.parent_span_id), python_span);
    assert_eq!(received.span_kind, opentelemetry::trace::SpanKind::Consumer);
    let attribute = |key: &str| {
        received
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    };
    assert_eq!(attribute("messaging.system").as_deref(), Some("rabbitmq"));
    assert_eq!(attribute("messaging.destination.name"), Some(topic));
    assert_eq!(attribute("rpc.method").as_deref(), Some("add"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_caller_s_span_is_the_parent_of_the_python_server_s() {
    exporter();
    let s = setup().await;
    let topic = unique("otel-py");
    let mut python_server = Peer::server(&s.url, &topic, "py1", &["--otel"]).await;
    let client = RpcClient::new(&s.transport, Target::topic(topic.clone())).timeout(CALL_TIMEOUT);
    let sum: i64 = client
        .call(&Context::new(), "add", json!({"a": 1, "b": 2}))
        .await
        .expect("call Python");
    assert_eq!(sum, 3);
    let mut seen = Vec::new();
    let (trace_id, parent) = loop {
        let line = python_server.next_with("span", &mut seen).await;
        if let Some((name, trace_id, _, parent)) = py_span(&line)
            && name == "add receive"
        {
            break (trace_id, parent);
        }
    };
    let sent = rust_span("add send", &trace_id);
    assert_eq!(parent, Some(hex_span(sent.span_context.span_id())));
    assert_eq!(sent.span_kind, opentelemetry::trace::SpanKind::Producer);
    python_server.stop().await;
}
