//! The driver's metric families on a real Zaqar server (`ZAQAR_URL`, default
//! `zaqar://127.0.0.1:8888`; `scripts/services zaqar` starts it): the messages posted
//! by kind, the time of each accepted POST, and refused POSTs. Memberships, which the
//! driver posts too, are not messages and are not counted.
//!
//! One test: the metrics recorder is process-wide.

mod support;

use std::time::Duration;

use messaging_core::notify::Notifier;
use messaging_core::telemetry::catalog;
use messaging_core::testkit::metrics::Recorded;
use messaging_core::testkit::unique;
use messaging_core::{Context, ErrorKind, Priority, RpcClient, RpcServer, Target};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_their_times_and_refusals_are_recorded() {
    support::init_logging();
    let mut recorded = Recorded::new();
    let project = unique("metrics");
    let transport = support::transport(&project, support::TEST_PACING).await;
    let topic = unique("calc").replace('_', "-");

    // Two calls (a request and a reply each) and a cast.
    let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("s1"))
        .endpoint(support::adder())
        .start()
        .await
        .unwrap();
    let client =
        RpcClient::new(&transport, Target::topic(topic.clone())).timeout(Duration::from_secs(30));
    for a in 0..2 {
        let sum: i64 = client
            .call(&Context::new(), "add", json!({"a": a, "b": 1}))
            .await
            .unwrap();
        assert_eq!(sum, a + 1);
    }
    client
        .cast(&Context::new(), "add", json!({"a": 0, "b": 0}))
        .await
        .unwrap();

    // Two notifications, received.
    let (listener, seen) = support::listen(&transport, &topic).await;
    let notifier = Notifier::new(&transport, "p").topics([topic.clone()]);
    for n in 0..2 {
        notifier
            .try_notify(&Context::new(), "ev", Priority::Info, n)
            .await
            .unwrap();
    }
    assert_eq!(support::wait_for(&seen, 2).await.len(), 2);

    // A notification over Zaqar's 256 KiB limit per POST: refused, not tried again.
    let err = notifier
        .try_notify(
            &Context::new(),
            "ev",
            Priority::Info,
            "x".repeat(300 * 1024),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RefusedByBroker, "{err:?}");

    listener.stop().await;
    listener.wait().await.unwrap();
    server.stop().await;
    server.wait().await.unwrap();
    transport.cleanup().await;

    recorded.take();
    let publishes =
        |kind| recorded.counter(catalog::PUBLISHES, &[("driver", "zaqar"), ("kind", kind)]);
    // Exactly: memberships (a server's registration) and reply-queue traffic are
    // not publishes.
    assert_eq!(publishes("rpc"), 3, "two calls and a cast");
    assert_eq!(publishes("reply"), 2, "the calls' replies");
    assert_eq!(publishes("notification"), 2, "the notifications Zaqar took");
    let confirms = recorded.histogram(catalog::PUBLISH_CONFIRM_SECONDS, &[("driver", "zaqar")]);
    assert_eq!(
        confirms.len(),
        7,
        "one time per accepted POST: {confirms:?}"
    );
    assert!(
        confirms.iter().all(|s| *s > 0.0 && *s < 30.0),
        "{confirms:?}"
    );
    assert!(
        recorded.counter(
            catalog::PUBLISH_FAILURES,
            &[("driver", "zaqar"), ("reason", "error")]
        ) >= 1,
        "the refused POST"
    );
}
