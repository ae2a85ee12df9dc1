//! No reply or fanout queue is left on the broker after a graceful stop.

use super::*;

/// An endpoint with `echo(data)` and `note()`, which counts the fanout casts.
fn noting_endpoint(notes: Arc<AtomicUsize>) -> Endpoint {
    support::echo_endpoint().method("note", move |_c: Context, _a: Value| {
        let notes = notes.clone();
        async move {
            notes.fetch_add(1, Ordering::SeqCst);
            Ok::<_, RemoteError>(Value::Null)
        }
    })
}

fn queue_names() -> Vec<String> {
    support::rabbitmqctl(&["list_queues", "-q", "--no-table-headers", "name"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Two servers (each with its queues `<topic>`, `<topic>.<server>` and a fanout
/// queue `<topic>_fanout_<id>`) and three clients (each with a reply queue
/// `reply_<id>`) calling and casting to all of them; once the servers are stopped
/// and waited for and the clients' transports cleaned up, no reply queue of the
/// clients and no fanout queue of the topic is left, and the fanout exchange (auto
/// delete) is gone. The third client's transport is only dropped, not cleaned up:
/// its reply queue goes too, a moment later (its consumer closes itself in the
/// background). `<topic>` and `<topic>.<server>` stay, as in oslo: they are declared
/// neither auto-delete nor exclusive, so that requests wait for a restarting server;
/// the test deletes them itself.
///
/// The reply queues are recognised by name: a queue of the test's own, bound to the
/// topic's routing keys, receives a copy of every request, whose `_reply_q` names the
/// queue of the client that sent it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_reply_or_fanout_queue_is_left_after_a_graceful_stop() {
    let _serial = SERIAL.lock().await;
    let topic = support::unique("res_leftover");
    let fanout_prefix = format!("{topic}_fanout_");
    let server_names = ["s1", "s2"];
    let mut servers = Vec::new();
    let mut notes = Vec::new();
    let mut server_transports = Vec::new();
    for name in server_names {
        let transport = support::transport().await;
        let noted = Arc::new(AtomicUsize::new(0));
        let server = RpcServer::new(&transport, Target::topic(topic.clone()).server(name))
            .endpoint(noting_endpoint(noted.clone()))
            .start()
            .await
            .expect("server starts");
        servers.push(server);
        notes.push(noted);
        server_transports.push(transport);
    }

    let connection = support::raw().await;
    let channel = connection.create_channel().await.unwrap();
    let peek = support::unique("res_peek");
    channel
        .queue_declare(
            peek.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    for key in [topic.clone(), format!("{topic}.s2")] {
        channel
            .queue_bind(
                peek.as_str().into(),
                "openstack".into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
    }

    const CLIENTS: usize = 3;
    let mut client_transports = Vec::new();
    let ctx = Context::new();
    for c in 0..CLIENTS {
        let transport = support::transport().await;
        let client = RpcClient::new(&transport, Target::topic(topic.clone()))
            .timeout(Duration::from_secs(30));
        for i in 0..5 {
            let data = json!(format!("{c}/{i}"));
            let got: Value = client
                .call(&ctx, "echo", json!({ "data": data }))
                .await
                .unwrap();
            assert_eq!(got, data);
            let got: Value = client
                .prepare()
                .server("s2")
                .call(&ctx, "echo", json!({ "data": data }))
                .await
                .unwrap();
            assert_eq!(got, data);
        }
        client
            .prepare()
            .fanout(true)
            .cast(&ctx, "note", json!({}))
            .await
            .unwrap();
        client_transports.push(transport);
    }
    eventually(
        Duration::from_secs(10),
        "every server gets every fanout cast",
        || notes.iter().all(|n| n.load(Ordering::SeqCst) == CLIENTS),
    )
    .await;

    // The reply queue of each client, named by the requests the peek queue received.
    let mut reply_queues = vec![HashSet::new(); CLIENTS];
    let mut requests = 0;
    while let Some(message) = channel
        .basic_get(peek.as_str().into(), BasicGetOptions { no_ack: true })
        .await
        .unwrap()
    {
        let request = Request::decode(&message.delivery.data).expect("a request");
        let reply = request.reply.expect("a call has a reply address");
        let data = request.args["data"].as_str().expect("data").to_string();
        let client: usize = data[..data.find('/').unwrap()].parse().unwrap();
        reply_queues[client].insert(reply.reply_q);
        requests += 1;
    }
    assert_eq!(requests, CLIENTS * 10, "the peek queue saw every call");
    let reply_queues: Vec<String> = reply_queues
        .into_iter()
        .map(|names| {
            assert_eq!(names.len(), 1, "one reply queue per client transport");
            names.into_iter().next().unwrap()
        })
        .collect();

    let during = queue_names();
    for q in &reply_queues {
        assert!(during.contains(q), "reply queue {q} exists while in use");
    }
    let fanout_during = during
        .iter()
        .filter(|q| q.starts_with(&fanout_prefix))
        .count();
    assert_eq!(fanout_during, 2, "one fanout queue per server:\n{during:?}");

    // Graceful shutdown: servers stop and drain, transports clean up; the last client
    // is only dropped.
    for server in &servers {
        stop(server).await;
    }
    drop(client_transports.pop());
    for transport in client_transports.iter().chain(&server_transports) {
        transport.cleanup().await;
    }

    let mut after = queue_names();
    let left = |after: &[String]| -> Vec<String> {
        after
            .iter()
            .filter(|q| reply_queues.contains(*q) || q.starts_with(&fanout_prefix))
            .cloned()
            .collect()
    };
    let cleaned_up_left: Vec<String> = left(&after)
        .into_iter()
        .filter(|q| *q != reply_queues[CLIENTS - 1])
        .collect();
    assert!(
        cleaned_up_left.is_empty(),
        "left on the broker after a graceful stop: {cleaned_up_left:?}"
    );
    let limit = Instant::now() + Duration::from_secs(10);
    while !left(&after).is_empty() && Instant::now() < limit {
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = queue_names();
    }
    let kept: Vec<&String> = after
        .iter()
        .filter(|q| *q == &topic || q.starts_with(&format!("{topic}.")))
        .collect();
    eprintln!(
        "resources: after a graceful stop, of {CLIENTS} reply and {fanout_during} fanout queues \
         left: {:?}; service queues kept (oslo's): {kept:?}",
        left(&after)
    );
    assert!(
        left(&after).is_empty(),
        "the dropped client's reply queue is left: {:?}",
        left(&after)
    );
    assert_eq!(kept.len(), 3, "{kept:?}");
    let exchanges = support::rabbitmqctl(&["list_exchanges", "-q", "--no-table-headers", "name"]);
    assert!(
        !exchanges.lines().any(|l| l == format!("{topic}_fanout")),
        "the fanout exchange is auto-delete and goes with its last queue"
    );

    let _ = connection.close(200, "OK".into()).await;
    delete_service_queues(&topic, &server_names).await;
}
