//! Bad input and bad peers: malformed frames never stop a server; a slow or dead
//! peer makes the calls to it fail with an error naming it, within their timeout,
//! with a bounded queue, while calls to other servers go on.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use driver_zmq::destination::{Destination, Member};
use driver_zmq::matchmaker::{InProcess, Matchmaker};
use messaging_core::notify::{Notification, NotificationListener, Notifier, Priority};
use messaging_core::rpc::{Endpoint, RpcServer};
use messaging_core::testkit::unique;
use messaging_core::{Context, Error, RemoteError, RpcClient, Target};
use serde_json::{Value, json};
use zeromq::{DealerSocket, RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

fn echo() -> Endpoint {
    Endpoint::new().method("echo", |_c: Context, v: Value| async move {
        Ok::<_, RemoteError>(v)
    })
}

fn message(frames: &[&[u8]]) -> ZmqMessage {
    ZmqMessage::try_from(
        frames
            .iter()
            .map(|f| Bytes::copy_from_slice(f))
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_never_stop_a_server() {
    support::init_logging();
    let port = support::free_port();
    let url = format!(
        "zmq+dummy://?{}&rpc_zmq_min_port={port}&rpc_zmq_max_port={port}",
        support::LOOPBACK
    );
    let transport = support::transport(&url).await.unwrap();
    let topic = unique("malformed");
    let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("s"))
        .endpoint(echo())
        .start()
        .await
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = seen.clone();
    let listener = NotificationListener::new(&transport, [Target::topic(topic.clone())])
        .on(Priority::Info, move |n: Notification| {
            let s = s.clone();
            async move { s.lock().unwrap().push(n.payload) }
        })
        .start()
        .await
        .unwrap();

    let mut raw = DealerSocket::new();
    raw.connect(&format!("tcp://127.0.0.1:{port}"))
        .await
        .unwrap();
    let rpc = format!("rpc/openstack/{topic}");
    let notify = format!("notify/openstack/{topic}.info#");
    let garbage: Vec<ZmqMessage> = vec![
        message(&[b"hello"]),
        message(&[b""]),
        message(&[b"omsg-zmq/9", b"C", b"id", rpc.as_bytes(), b"{}"]),
        message(&[b"omsg-zmq/1", b"?", b"id", rpc.as_bytes(), b"{}"]),
        message(&[b"omsg-zmq/1", b"CC", b"id", rpc.as_bytes(), b"{}"]),
        message(&[b"omsg-zmq/1", b"C", b"id", &[0xff, 0xfe], b"{}"]),
        message(&[b"omsg-zmq/1", b"C", b"id", rpc.as_bytes(), b"not json"]),
        message(&[b"omsg-zmq/1", b"S", b"id", rpc.as_bytes(), b"[1,2"]),
        message(&[
            b"omsg-zmq/1",
            b"F",
            b"id",
            rpc.as_bytes(),
            b"{\"no\": \"method\"}",
        ]),
        message(&[b"omsg-zmq/1", b"N", b"id", notify.as_bytes(), &[0, 1, 2, 3]]),
        message(&[b"omsg-zmq/1", b"N", b"id2", b"notify/only", b"{}"]),
        message(&[b"omsg-zmq/1", b"R", b"nobody", b"", b"{}"]),
        message(&[b"omsg-zmq/1", b"A", b"nobody", b"", b""]),
        message(&[b"omsg-zmq/1", b"C", b"id", rpc.as_bytes(), b"{}", b"extra"]),
        message(&[&[0u8; 70_000]]),
        // A batch (messages back to back): the bad one is dropped, the good one
        // behind it still delivered.
        message(&[
            b"omsg-zmq/9",
            b"N",
            b"id3",
            notify.as_bytes(),
            b"{}",
            b"omsg-zmq/1",
            b"N",
            b"id4",
            notify.as_bytes(),
            br#"{"message_id": "m4", "publisher_id": "raw", "event_type": "ev",
                 "priority": "INFO", "payload": "batched",
                 "timestamp": "2026-01-01 00:00:00.000000"}"#,
        ]),
    ];
    for m in garbage {
        raw.send(m).await.unwrap();
    }
    // The call whose body is not JSON is answered with why, not left to time out.
    let reply = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let frames = raw.recv().await.unwrap().into_vec();
            if let Some(answer) = frames
                .chunks(5)
                .find(|m| m.len() == 5 && m[1].as_ref() == b"R" && m[2].as_ref() == b"id")
            {
                break String::from_utf8_lossy(&answer[4]).into_owned();
            }
        }
    })
    .await
    .expect("the malformed call is answered");
    assert!(reply.contains("malformed request"), "{reply}");
    // The server still answers, and a notification still arrives.
    let client =
        RpcClient::new(&transport, Target::topic(topic.clone())).timeout(Duration::from_secs(5));
    let echoed: Value = client
        .call(&Context::new(), "echo", json!({"ok": true}))
        .await
        .unwrap();
    assert_eq!(echoed, json!({"ok": true}));
    Notifier::new(&transport, "p")
        .topics([topic.clone()])
        .try_notify(&Context::new(), "ev", Priority::Info, "fine")
        .await
        .unwrap();
    for _ in 0..200 {
        if seen.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*seen.lock().unwrap(), vec![json!("batched"), json!("fine")]);
    server.stop().await;
    server.wait().await.unwrap();
    listener.stop().await;
    listener.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_dead_peers_fail_their_calls_only() {
    support::init_logging();
    let url = format!(
        "zmq+dummy://?{}&zmq_send_queue=8&zmq_send_timeout=1",
        support::LOOPBACK
    );
    let transport = support::transport(&url).await.unwrap();
    let topic = unique("peers");
    let server = RpcServer::new(&transport, Target::topic(topic.clone()).server("healthy"))
        .endpoint(echo())
        .start()
        .await
        .unwrap();

    // A "slow" server: a ROUTER that accepts connections and never reads; and a
    // "dead" one: an address nobody listens on.
    let slow_port = support::free_port();
    let mut slow = RouterSocket::new();
    slow.bind(&format!("tcp://127.0.0.1:{slow_port}"))
        .await
        .unwrap();
    let dead_port = support::free_port();
    let key = |server: &str| Destination::Server {
        exchange: "openstack".into(),
        topic: topic.clone(),
        server: server.into(),
    };
    let mm = InProcess::shared();
    mm.register(
        &key("slow"),
        &Member::node(format!("127.0.0.1:{slow_port}")),
        None,
    )
    .await
    .unwrap();
    mm.register(
        &key("dead"),
        &Member::node(format!("127.0.0.1:{dead_port}")),
        None,
    )
    .await
    .unwrap();

    let client = RpcClient::new(&transport, Target::topic(topic.clone()))
        .timeout(Duration::from_millis(800));
    // Eight calls the slow peer never answers fill its window (zmq_send_queue = 8)...
    let occupying: Vec<_> = (0..8)
        .map(|_| {
            let c = client
                .prepare()
                .server("slow")
                .timeout(Duration::from_secs(3));
            tokio::spawn(
                async move { c.call::<_, Value>(&Context::new(), "echo", json!({})).await },
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...so further calls to it wait for room and fail within their timeout, naming it,
    let flood: Vec<_> = (0..56)
        .map(|_| {
            let c = client.prepare().server("slow");
            tokio::spawn(async move {
                let started = Instant::now();
                let r = c.call::<_, Value>(&Context::new(), "echo", json!({})).await;
                (r, started.elapsed())
            })
        })
        .collect();
    // while the healthy server answers at once.
    let started = Instant::now();
    for _ in 0..20 {
        let v: Value = client
            .prepare()
            .server("healthy")
            .call(&Context::new(), "echo", json!({"n": 1}))
            .await
            .unwrap();
        assert_eq!(v, json!({"n": 1}));
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "calls to a healthy server are not held up by a slow one ({:?})",
        started.elapsed()
    );
    for call in flood {
        let (result, took) = call.await.unwrap();
        let e = result.expect_err("a server that never reads does not answer");
        assert!(matches!(e, Error::Timeout(_)), "{e:?}");
        assert!(
            took < Duration::from_millis(1500),
            "ended within its timeout: {took:?}"
        );
        assert!(
            e.to_string().contains(&format!(
                "8 messages to 127.0.0.1:{slow_port} are unanswered"
            )),
            "{e}"
        );
    }
    for call in occupying {
        let e = call.await.unwrap().unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("sent to 127.0.0.1:{slow_port}")),
            "{e}"
        );
    }

    // The dead peer: calls fail within their timeout and say the peer is unreachable.
    let started = Instant::now();
    let e = client
        .prepare()
        .server("dead")
        .call::<_, Value>(&Context::new(), "echo", json!({}))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(
        e.to_string().contains(&format!("127.0.0.1:{dead_port}")),
        "names the peer: {e}"
    );
    // A cast to it fails at once once the connection attempts have failed.
    let started = Instant::now();
    let e = loop {
        match client
            .prepare()
            .server("dead")
            .cast(&Context::new(), "echo", json!({}))
            .await
        {
            Err(e) => break e,
            Ok(()) if started.elapsed() < Duration::from_secs(3) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Ok(()) => panic!("casts to a dead peer keep being accepted"),
        }
    };
    assert!(
        e.to_string()
            .contains(&format!("127.0.0.1:{dead_port} unreachable")),
        "{e}"
    );
    mm.unregister(
        &key("slow"),
        &Member::node(format!("127.0.0.1:{slow_port}")),
    )
    .await
    .unwrap();
    mm.unregister(
        &key("dead"),
        &Member::node(format!("127.0.0.1:{dead_port}")),
    )
    .await
    .unwrap();
    server.stop().await;
    server.wait().await.unwrap();
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_falls_behind_pushes_back_on_casts() {
    support::init_logging();
    let url = format!(
        "zmq+dummy://?{}&zmq_send_queue=64&zmq_send_timeout=1",
        support::LOOPBACK
    );
    let server_side = support::transport(&url).await.unwrap();
    let client_side = support::transport(&url).await.unwrap();
    let topic = unique("behind");
    // Every cast waits at the gate until the test opens it.
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let handled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (g, h) = (gate.clone(), handled.clone());
    let api = Endpoint::new().method("work", move |_c: Context, _: Value| {
        let (gate, handled) = (g.clone(), h.clone());
        async move {
            gate.acquire().await.unwrap().forget();
            handled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok::<_, RemoteError>(())
        }
    });
    let server = RpcServer::new(&server_side, Target::topic(topic.clone()).server("s"))
        .endpoint(api)
        .start()
        .await
        .unwrap();
    let client = RpcClient::new(&client_side, Target::topic(topic.clone()));

    // Casts go until the server's backlog is full and the node stops reading: then
    // one waits out zmq_send_timeout and fails, naming the peer.
    const TRIES: usize = 200_000;
    let mut accepted = 0;
    let mut refusal = None;
    let started = Instant::now();
    while accepted < TRIES {
        match client.cast(&Context::new(), "work", json!({})).await {
            Ok(()) => accepted += 1,
            Err(e) => {
                refusal = Some(e);
                break;
            }
        }
    }
    let e = refusal.expect("a server that handles nothing pushes back");
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    assert!(e.to_string().contains("are not taken yet"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "pushed back within the send timeout: {:?}",
        started.elapsed()
    );
    // What was accepted is what the server holds (its 64 running casts and its
    // backlog) and the 64 casts of the window: bounded, whatever the sender does.
    assert!(
        (64..5_000).contains(&accepted),
        "casts accepted before the push-back: {accepted}"
    );

    // Once the server catches up, every accepted cast is handled, and casts flow again.
    gate.add_permits(TRIES + 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while handled.load(std::sync::atomic::Ordering::SeqCst) < accepted {
        assert!(
            Instant::now() < deadline,
            "handled {} of {accepted} accepted casts",
            handled.load(std::sync::atomic::Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client
        .cast(&Context::new(), "work", json!({}))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while handled.load(std::sync::atomic::Ordering::SeqCst) < accepted + 1 {
        assert!(Instant::now() < deadline, "a cast after the push-back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        handled.load(std::sync::atomic::Ordering::SeqCst),
        accepted + 1,
        "nothing handled twice"
    );
    server.stop().await;
    server.wait().await.unwrap();
}
