//! Life-cycle edge cases and faults: wait before stop, restart without wait, a stop
//! during a partial batch, panicking handlers, absurd timeouts, unreadable replies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use messaging_core::notify::{
    Notification, NotificationListener, NotificationResult, Notifier, Priority,
};
use messaging_core::rpc::Endpoint;
use messaging_core::{
    Config, Context, DriverRegistry, Error, RemoteError, RpcClient, RpcServer, Target, Transport,
};
use serde_json::{Value, json};

async fn transport(name: &str) -> Transport {
    DriverRegistry::with_memory()
        .transport(&format!("memory:///{name}"), &Config::default())
        .await
        .unwrap()
}

fn echo() -> Endpoint {
    Endpoint::new()
        .method("echo", |_c: Context, v: Value| async move {
            Ok::<_, RemoteError>(v)
        })
        .method("boom", |_c: Context, _: Value| async move {
            if true {
                panic!("endpoint exploded");
            }
            Ok::<_, RemoteError>(())
        })
        // Panics before it returns its future: the server starts a method as it
        // takes the request, so that part must be caught too.
        .method("boom_at_once", |_c: Context, _: Value| {
            if true {
                panic!("endpoint exploded at once");
            }
            async move { Ok::<_, RemoteError>(()) }
        })
}

async fn limit<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("did not hang")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_before_stop_returns_and_the_server_keeps_serving() {
    let t = transport("wait-before-stop").await;
    let server = RpcServer::new(&t, Target::topic("t").server("s"))
        .endpoint(echo())
        .start()
        .await
        .unwrap();
    limit(server.wait()).await.unwrap();
    let client = RpcClient::new(&t, Target::topic("t")).timeout(Duration::from_secs(5));
    assert_eq!(
        client
            .call::<_, Value>(&Context::new(), "echo", json!({"a": 1}))
            .await
            .unwrap(),
        json!({"a": 1})
    );
    server.stop().await;
    limit(server.wait()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_then_start_without_wait_restarts() {
    let t = transport("restart-no-wait").await;
    let server = RpcServer::new(&t, Target::topic("t").server("s"))
        .endpoint(echo())
        .start()
        .await
        .unwrap();
    server.stop().await;
    limit(server.start()).await.unwrap();
    let client = RpcClient::new(&t, Target::topic("t")).timeout(Duration::from_secs(5));
    assert_eq!(
        client
            .call::<_, Value>(&Context::new(), "echo", json!(null))
            .await
            .unwrap(),
        json!({})
    );
    server.stop().await;
    limit(server.wait()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_and_cancelled_waits_all_see_the_drain() {
    let t = transport("cancelled-wait").await;
    let finished = Arc::new(AtomicUsize::new(0));
    let f = finished.clone();
    let endpoint = Endpoint::new().method("slow", move |_c: Context, _: Value| {
        let f = f.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            f.fetch_add(1, Ordering::SeqCst);
            Ok::<_, RemoteError>("done")
        }
    });
    let server = Arc::new(
        RpcServer::new(&t, Target::topic("t").server("s"))
            .endpoint(endpoint)
            .start()
            .await
            .unwrap(),
    );
    let client = RpcClient::new(&t, Target::topic("t")).timeout(Duration::from_secs(5));
    let call = tokio::spawn(async move {
        client
            .call::<_, String>(&Context::new(), "slow", json!({}))
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop().await;
    // A wait that gives up early must not make the next one return before the drain.
    assert!(matches!(
        server.wait_timeout(Duration::from_millis(20)).await,
        Err(Error::WaitTimeout(_))
    ));
    let _ = tokio::time::timeout(Duration::from_millis(20), server.wait()).await;
    let other = server.clone();
    let second = tokio::spawn(async move { other.wait().await });
    limit(server.wait()).await.unwrap();
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "wait returned only after the in-flight request finished"
    );
    limit(second).await.unwrap().unwrap();
    assert_eq!(call.await.unwrap().unwrap(), "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_endpoint_answers_with_a_runtime_error() {
    let t = transport("panic-rpc").await;
    let server = RpcServer::new(&t, Target::topic("t").server("s"))
        .endpoint(echo())
        .start()
        .await
        .unwrap();
    let client = RpcClient::new(&t, Target::topic("t")).timeout(Duration::from_secs(5));
    for (method, message) in [
        ("boom", "endpoint exploded"),
        ("boom_at_once", "endpoint exploded at once"),
    ] {
        match client
            .call::<_, Value>(&Context::new(), method, json!({}))
            .await
        {
            Err(Error::Remote(r)) => {
                assert!(r.is("builtins", "RuntimeError"), "{r:?}");
                assert!(r.message.contains(message), "{r:?}");
            }
            other => panic!("expected a remote RuntimeError from {method}, got {other:?}"),
        }
    }
    assert_eq!(
        client
            .call::<_, Value>(&Context::new(), "echo", json!({"still": "serving"}))
            .await
            .unwrap()["still"],
        "serving"
    );
    server.stop().await;
    server.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_notification_handler_requeues() {
    let t = transport("panic-notify").await;
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let listener = NotificationListener::new(&t, [Target::topic("n")])
        .allow_requeue(true)
        .on(Priority::Info, move |_n: Notification| {
            let c = c.clone();
            async move {
                if c.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("handler exploded");
                }
                NotificationResult::Handled
            }
        })
        .start()
        .await
        .unwrap();
    Notifier::new(&t, "p")
        .topics(["n"])
        .try_notify(&Context::new(), "e", Priority::Info, 1)
        .await
        .unwrap();
    limit(async {
        while calls.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    listener.stop().await;
    listener.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_batch_listener_keeps_the_partial_batch() {
    let t = transport("partial-batch").await;
    let notifier = Notifier::new(&t, "p").topics(["b"]);
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let listener = NotificationListener::new(&t, [Target::topic("b")])
        .batch(10, None)
        .on_batch(Priority::Info, move |batch: Vec<Notification>| {
            let g = g.clone();
            async move {
                g.lock()
                    .unwrap()
                    .extend(batch.into_iter().map(|n| n.payload))
            }
        })
        .start()
        .await
        .unwrap();
    for i in 0..3 {
        notifier
            .try_notify(&Context::new(), "e", Priority::Info, i)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    listener.stop().await;
    limit(listener.wait()).await.unwrap();
    assert_eq!(
        *got.lock().unwrap(),
        vec![json!(0), json!(1), json!(2)],
        "the partial batch is handled on stop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_timeouts_do_not_panic() {
    let t = transport("absurd").await;
    let server = RpcServer::new(&t, Target::topic("t").server("s"))
        .endpoint(echo())
        .start()
        .await
        .unwrap();
    // Sends `_timeout` = 1.8e19 s: the server's heartbeat interval must not overflow,
    // or the handler dies without replying and this call would hang.
    let client = RpcClient::new(&t, Target::topic("t"))
        .timeout(Duration::MAX)
        .call_monitor_timeout(Duration::MAX);
    let reply = limit(client.call::<_, Value>(&Context::new(), "echo", json!({"x": 1})))
        .await
        .unwrap();
    assert_eq!(reply, json!({"x": 1}));
    let monitored = RpcClient::new(&t, Target::topic("t"))
        .timeout(Duration::from_secs(5))
        .call_monitor_timeout(Duration::from_secs_f64(1e15));
    assert_eq!(
        limit(monitored.call::<_, Value>(&Context::new(), "echo", json!({})))
            .await
            .unwrap(),
        json!({})
    );
    server.stop().await;
    server.wait().await.unwrap();
}
