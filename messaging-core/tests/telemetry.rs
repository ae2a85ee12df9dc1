//! Metrics and trace propagation through real RPC and notifications on the memory
//! transport. One test: the metrics recorder is process-wide.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use messaging_core::notify::{Notification, NotificationListener, NotificationResult, Notifier};
use messaging_core::rpc::Endpoint;
use messaging_core::telemetry::{TraceContext, catalog, current_trace, rpc_metrics};
use messaging_core::testkit::metrics::Recorded;
use messaging_core::{
    Config, Context, DriverRegistry, Error, Priority, RemoteError, RpcClient, RpcServer, Target,
    Transport,
};
use serde_json::{Value, json};

const PYTHON_PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

async fn transport() -> Transport {
    let config = Config::from_ini_str("[oslo_messaging_metrics]\nmetrics_process_name = calc\n")
        .expect("config");
    DriverRegistry::with_memory()
        .transport("memory:///telemetry", &config)
        .await
        .expect("transport")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_and_notifications_are_counted_and_carry_the_trace_on() {
    let mut metrics = Recorded::new();

    let transport = transport().await;
    // A downstream server records the trace context of what it is sent.
    let downstream_seen = Arc::new(Mutex::new(Vec::<Option<TraceContext>>::new()));
    let seen = downstream_seen.clone();
    let downstream = RpcServer::new(&transport, Target::topic("audit").server("a1"))
        .endpoint(
            Endpoint::new().method("record", move |ctx: Context, _: Value| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push(TraceContext::from_map(ctx.as_map()));
                    Ok::<_, RemoteError>(())
                }
            }),
        )
        .start()
        .await
        .unwrap();
    // The server under test: its method sees the caller's trace as the current one
    // and casts to the downstream server, which must get the same trace.
    let current_seen = Arc::new(Mutex::new(Vec::<Option<TraceContext>>::new()));
    let current = current_seen.clone();
    let audit = RpcClient::new(&transport, Target::topic("audit"));
    let calc = Endpoint::new()
        .name("CalcAPI")
        .version("1.1")
        .method("add", move |_ctx: Context, v: Value| {
            let (current, audit) = (current.clone(), audit.clone());
            async move {
                current.lock().unwrap().push(current_trace());
                audit
                    .cast(&Context::new(), "record", json!({}))
                    .await
                    .map_err(|e| RemoteError::runtime_error(e.to_string()))?;
                Ok::<_, RemoteError>(v["a"].as_i64().unwrap_or(0) + 1)
            }
        })
        .method("fail", |_ctx: Context, _: Value| async move {
            Err::<(), _>(RemoteError::value_error("no"))
        });
    let server = RpcServer::new(&transport, Target::topic("calc").server("host1"))
        .endpoint(calc)
        .start()
        .await
        .unwrap();

    let client = RpcClient::new(&transport, Target::topic("calc"))
        .version("1.1")
        .timeout(Duration::from_secs(10));
    let traced = Context::new()
        .with("request_id", "req-1")
        .with("traceparent", PYTHON_PARENT);
    for a in 0..3 {
        let sum: i64 = client.call(&traced, "add", json!({"a": a})).await.unwrap();
        assert_eq!(sum, a + 1);
    }
    let err = client
        .call::<_, Value>(&Context::new(), "fail", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Remote(_)), "{err:?}");
    let slow = client.clone().timeout(Duration::from_millis(100));
    let err = slow
        .clone()
        .topic("nobody")
        .call::<_, Value>(&Context::new(), "add", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");

    // Client families, oslo's names and labels.
    let recorded = metrics.take();
    let add = [
        ("call_type", "call"),
        ("topic", "calc"),
        ("method", "add"),
        ("version", "1.1"),
        ("exchange", "None"),
        ("server", "None"),
        ("fanout", "None"),
        ("timeout", "None"),
        ("process", "calc"),
    ];
    assert_eq!(
        recorded.counter(rpc_metrics::RPC_CLIENT_INVOCATION_START, &add),
        3
    );
    assert_eq!(
        recorded.counter(rpc_metrics::RPC_CLIENT_INVOCATION_END, &add),
        3
    );
    let seconds = recorded.histogram(rpc_metrics::RPC_CLIENT_PROCESSING_SECONDS, &add);
    assert_eq!(seconds.len(), 3, "processing seconds: {seconds:?}");
    let failed = [("method", "fail"), ("exception", "ValueError_Remote")];
    assert_eq!(
        recorded.counter(rpc_metrics::RPC_CLIENT_EXCEPTION, &failed),
        1
    );
    let timed_out = [("topic", "nobody"), ("exception", "MessagingTimeout")];
    assert_eq!(
        recorded.counter(rpc_metrics::RPC_CLIENT_EXCEPTION, &timed_out),
        1
    );
    // The downstream cast from inside the method.
    let cast = [
        ("call_type", "cast"),
        ("topic", "audit"),
        ("method", "record"),
    ];
    assert_eq!(
        recorded.counter(rpc_metrics::RPC_CLIENT_INVOCATION_END, &cast),
        3
    );

    // Server families, which Python defines but does not send.
    let served = [
        ("topic", "calc"),
        ("server", "host1"),
        ("endpoint", "CalcAPI"),
        ("method", "add"),
        ("version", "1.1"),
        ("namespace", "None"),
        ("process", "calc"),
    ];
    for name in [
        rpc_metrics::RPC_SERVER_INVOCATION_START,
        rpc_metrics::RPC_SERVER_INVOCATION_END,
    ] {
        assert_eq!(recorded.counter(name, &served), 3, "{name}");
    }
    let raised = [("method", "fail"), ("exception", "ValueError")];
    assert_eq!(
        recorded.counter(rpc_metrics::RPC_SERVER_EXCEPTION, &raised),
        1
    );
    assert_eq!(
        metrics.gauge(catalog::RPC_CLIENT_CALLS_IN_FLIGHT, &[("topic", "calc")]),
        Some(0.0),
        "every call came back"
    );

    // The trace: the method saw the caller's, and what it cast went on in that trace
    // with a span of its own.
    let parent = TraceContext::parse(PYTHON_PARENT, None).unwrap();
    let current = current_seen.lock().unwrap().clone();
    assert_eq!(current.len(), 3);
    assert!(
        current.iter().all(|c| c.as_ref() == Some(&parent)),
        "{current:?}"
    );
    for _ in 0..500 {
        if downstream_seen.lock().unwrap().len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let downstream_seen = downstream_seen.lock().unwrap().clone();
    assert_eq!(downstream_seen.len(), 3);
    for trace in &downstream_seen {
        let trace = trace.as_ref().expect("the cast carried the trace on");
        assert_eq!(trace.trace_id(), parent.trace_id());
        assert_ne!(trace.span_id(), parent.span_id());
    }

    // Notifications: sent, handled and requeued counts, and the trace context carried.
    let received = Arc::new(Mutex::new(Vec::<Option<TraceContext>>::new()));
    let r = received.clone();
    let listener = NotificationListener::new(&transport, [Target::topic("events")])
        .allow_requeue(true)
        .on(Priority::Info, move |n: Notification| {
            let r = r.clone();
            async move {
                let first = {
                    let mut r = r.lock().unwrap();
                    r.push(current_trace());
                    r.len() == 1
                };
                if first {
                    NotificationResult::Requeue
                } else {
                    drop(n);
                    NotificationResult::Handled
                }
            }
        })
        .start()
        .await
        .unwrap();
    Notifier::new(&transport, "calc.host1")
        .topics(["events"])
        .try_notify(&traced, "calc.added", Priority::Info, json!({}))
        .await
        .unwrap();
    for _ in 0..500 {
        if received.lock().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    listener.stop().await;
    listener.wait().await.unwrap();
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "requeued once, then handled");
    assert!(
        received.iter().all(|t| t.as_ref() == Some(&parent)),
        "{received:?}"
    );
    let recorded = metrics.take();
    let info = [("topic", "events"), ("priority", "info")];
    assert_eq!(recorded.counter(catalog::NOTIFICATIONS_SENT, &info), 1);
    for result in ["requeued", "handled"] {
        let labels = [("priority", "info"), ("result", result)];
        assert_eq!(
            recorded.counter(catalog::NOTIFICATIONS_HANDLED, &labels),
            1,
            "{result}"
        );
    }

    for s in [&server, &downstream] {
        s.stop().await;
        s.wait().await.unwrap();
    }

    // The backlog: a server running one request at a time, held by its method, has
    // the others waiting.
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let started = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (r, st) = (release.clone(), started.clone());
    let busy = RpcServer::new(&transport, Target::topic("busy").server("b1"))
        .max_concurrency(1)
        .endpoint(
            Endpoint::new().method("hold", move |_c: Context, _: Value| {
                let (r, st) = (r.clone(), st.clone());
                async move {
                    st.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    r.acquire().await.expect("open").forget();
                    Ok::<_, RemoteError>(())
                }
            }),
        )
        .start()
        .await
        .unwrap();
    let caster = RpcClient::new(&transport, Target::topic("busy"));
    for _ in 0..3 {
        caster
            .cast(&Context::new(), "hold", json!({}))
            .await
            .unwrap();
    }
    let backlog = [("topic", "busy"), ("server", "b1")];
    // A snapshot resets the gauge, so the highest value seen is kept.
    let mut waiting = 0.0_f64;
    for _ in 0..500 {
        let now = metrics.take().gauge(catalog::RPC_SERVER_BACKLOG, &backlog);
        waiting = waiting.max(now.unwrap_or(0.0));
        if started.load(std::sync::atomic::Ordering::SeqCst) == 1 && waiting >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        waiting >= 1.0,
        "requests wait behind the one running: {waiting}"
    );
    release.add_permits(3);
    for _ in 0..500 {
        if started.load(std::sync::atomic::Ordering::SeqCst) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(started.load(std::sync::atomic::Ordering::SeqCst), 3);
    busy.stop().await;
    busy.wait().await.unwrap();
}
