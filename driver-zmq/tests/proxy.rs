//! The proxy with raw ZeroMQ sockets standing in for nodes: forwarding and answers,
//! refusals, publishing, malformed input, and the binary.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, sleep, timeout};
use zeromq::util::PeerIdentity;
use zeromq::{DealerSocket, Socket, SocketOptions, SocketRecv, SocketSend, SubSocket, ZmqMessage};

use driver_zmq::frame::{Frame, Kind, VERSION};
use driver_zmq::proxy::{Proxy, ProxyStats};

/// How long anything may take before a test fails.
const PATIENCE: Duration = Duration::from_secs(10);

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A node's DEALER with identity `id`, connected to the proxy's router.
async fn node(id: &str, router: &str) -> DealerSocket {
    let mut options = SocketOptions::default();
    options.peer_identity(PeerIdentity::try_from(id.as_bytes()).unwrap());
    let mut dealer = DealerSocket::with_options(options);
    timeout(PATIENCE, dealer.connect(&format!("tcp://{router}")))
        .await
        .expect("connect in time")
        .expect("connect");
    dealer
}

/// Sends raw frames, retrying while the DEALER has no connected peer yet.
async fn send(dealer: &mut DealerSocket, frames: Vec<Bytes>) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match dealer
            .send(ZmqMessage::try_from(frames.clone()).unwrap())
            .await
        {
            Ok(()) => return,
            // Not connected yet (or no longer): try again shortly.
            Err(_) if Instant::now() < deadline => sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("send: {e}"),
        }
    }
}

/// Sends `frame` to node `to` (empty: publish).
async fn send_to(dealer: &mut DealerSocket, to: &str, frame: Frame) {
    send(dealer, frame.into_message([b(to)]).into_vec()).await;
}

async fn recv(socket: &mut impl SocketRecv) -> Vec<Bytes> {
    timeout(PATIENCE, socket.recv())
        .await
        .expect("a message in time")
        .expect("recv")
        .into_vec()
}

/// Whether a message arrives within `wait`.
async fn quiet(socket: &mut impl SocketRecv, wait: Duration) -> bool {
    timeout(wait, socket.recv()).await.is_err()
}

/// `[peer, …5 frames]` read back as (peer, frame).
fn routed(mut frames: Vec<Bytes>) -> (Bytes, Frame) {
    let peer = frames.remove(0);
    (peer, Frame::parse(frames).expect("a well-formed message"))
}

/// Makes sure the proxy registered `dealer` (a ROUTER learns a peer a little after the
/// peer's `connect` returns): a message to nobody comes back refused only once the
/// proxy knows whom to answer.
async fn registered(dealer: &mut DealerSocket, probe: &str) {
    send_to(
        dealer,
        "nobody",
        Frame::new(Kind::Cast, b(probe), "rpc/x/probe", "{}"),
    )
    .await;
    let (peer, frame) = routed(recv(dealer).await);
    assert_eq!(peer, b("nobody"));
    assert_eq!((frame.kind, frame.id), (Kind::Refused, b(probe)));
}

/// Polls `stats` until `done` holds.
async fn stats_until(proxy: &Proxy, done: impl Fn(&ProxyStats) -> bool) -> ProxyStats {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = proxy.stats();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "stats never got there: {stats:?}"
        );
        sleep(Duration::from_millis(10)).await;
    }
}

async fn local_proxy() -> Proxy {
    Proxy::bind("127.0.0.1:0", "127.0.0.1:0")
        .await
        .expect("bind the proxy")
}

#[tokio::test]
async fn forwards_between_nodes_and_back() {
    let proxy = local_proxy().await;
    let mut a = node("nA", proxy.router_address()).await;
    let mut b_node = node("nB", proxy.router_address()).await;
    registered(&mut a, "probe-a").await;
    registered(&mut b_node, "probe-b").await;

    let call = Frame::new(Kind::Call, "m1", "rpc/nova/compute/host1", r#"{"x":1}"#);
    send_to(&mut a, "nB", call.clone()).await;
    let frames = recv(&mut b_node).await;
    assert_eq!(frames.len(), 6, "[from, 5 frames]");
    assert_eq!(frames[1], Bytes::from_static(VERSION));
    let (from, got) = routed(frames);
    assert_eq!(from, b("nA"));
    assert_eq!(got, call);

    // B answers whoever the first frame named.
    let reply = Frame::answer(Kind::Reply, got.id.clone(), r#"{"result":2}"#);
    send(&mut b_node, reply.clone().into_message([from]).into_vec()).await;
    let (from, got) = routed(recv(&mut a).await);
    assert_eq!(from, b("nB"));
    assert_eq!(got, reply);

    let stats = stats_until(&proxy, |s| s.forwarded == 2).await;
    assert_eq!(
        stats,
        ProxyStats {
            forwarded: 2,
            refused: 2,
            ..ProxyStats::default()
        }
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn messages_to_unknown_nodes_are_refused_and_answers_dropped() {
    let proxy = local_proxy().await;
    let mut a = node("nA", proxy.router_address()).await;

    for kind in [Kind::Call, Kind::Cast, Kind::Notify, Kind::Fanout] {
        let id = format!("m-{kind:?}");
        send_to(&mut a, "nC", Frame::new(kind, b(&id), "rpc/x/t/nC", "{}")).await;
        let (peer, frame) = routed(recv(&mut a).await);
        assert_eq!(peer, b("nC"));
        assert_eq!(
            frame,
            Frame::answer(Kind::Refused, b(&id), "no node nC at the proxy")
        );
    }

    // An answer has nobody to be refused to: it is dropped silently.
    for kind in [Kind::Reply, Kind::Ack, Kind::Refused] {
        send_to(&mut a, "nC", Frame::answer(kind, b("m2"), "{}")).await;
    }
    let stats = stats_until(&proxy, |s| s.dropped == 3).await;
    assert_eq!(stats.refused, 4);
    assert_eq!(stats.forwarded, 0);
    assert!(quiet(&mut a, Duration::from_millis(200)).await);
    proxy.shutdown().await;
}

#[tokio::test]
async fn publishes_to_exact_subscribers() {
    let proxy = local_proxy().await;
    let mut a = node("nA", proxy.router_address()).await;
    let publisher = format!("tcp://{}", proxy.publisher_address());
    let mut mine = SubSocket::new();
    mine.connect(&publisher).await.unwrap();
    mine.subscribe("rpc/x/t").await.unwrap();
    let mut other = SubSocket::new();
    other.connect(&publisher).await.unwrap();
    other.subscribe("rpc/x/other").await.unwrap();

    // Subscriptions reach the PUB asynchronously: publish until one arrives.
    let fanout = Frame::new(Kind::Fanout, "f1", "rpc/x/t", r#"{"method":"reset"}"#);
    let got = publish_until_received(&mut a, &fanout, &mut mine).await;
    assert_eq!(got.len(), 7, "[destination, from, 5 frames]");
    assert_eq!(got[0], b("rpc/x/t"));
    assert_eq!(got[1], b("nA"));
    assert_eq!(Frame::parse(got[2..].to_vec()).unwrap(), fanout);

    let to_other = Frame::new(Kind::Fanout, "f2", "rpc/x/other", "{}");
    publish_until_received(&mut a, &to_other, &mut other).await;
    // Both subscriptions are in place now: one more to rpc/x/t reaches only `mine`.
    let again = Frame::new(Kind::Fanout, "f3", "rpc/x/t", "{}");
    publish_until_received(&mut a, &again, &mut mine).await;
    while let Ok(Ok(message)) = timeout(Duration::from_millis(200), other.recv()).await {
        assert_eq!(message.into_vec()[0], b("rpc/x/other"));
    }
    while let Ok(Ok(message)) = timeout(Duration::from_millis(200), mine.recv()).await {
        assert_eq!(message.into_vec()[0], b("rpc/x/t"));
    }
    assert!(proxy.stats().published >= 2);
    assert_eq!(proxy.stats().malformed, 0);
    proxy.shutdown().await;
}

/// Publishes `frame` from `node` until `sub` receives it (bounded).
async fn publish_until_received(
    node: &mut DealerSocket,
    frame: &Frame,
    sub: &mut SubSocket,
) -> Vec<Bytes> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        send_to(node, "", frame.clone()).await;
        if let Ok(received) = timeout(Duration::from_millis(100), sub.recv()).await {
            return received.unwrap().into_vec();
        }
        assert!(Instant::now() < deadline, "the subscriber got nothing");
    }
}

#[tokio::test]
async fn malformed_input_is_counted_and_dropped() {
    let proxy = local_proxy().await;
    let mut a = node("nA", proxy.router_address()).await;
    let mut b_node = node("nB", proxy.router_address()).await;
    registered(&mut b_node, "probe-b").await;

    let good = |kind: &str, destination: &[u8]| {
        vec![
            b("nB"),
            Bytes::from_static(VERSION),
            b(kind),
            b("m1"),
            Bytes::copy_from_slice(destination),
            b("{}"),
        ]
    };
    let mut bad: Vec<Vec<Bytes>> = vec![
        // One frame; one empty frame (zeromq refuses to send a message of no frames).
        vec![b("nB")],
        vec![Bytes::new()],
        // A destination frame, nothing after it.
        vec![b("nB"), Bytes::new()],
        // Wrong frame counts.
        good("C", b"d")[..5].to_vec(),
        [good("C", b"d"), vec![b("extra")]].concat(),
        // Garbage.
        vec![Bytes::from_static(&[0xff, 0x00, 0x13]); 4],
        vec![Bytes::from_static(&[0xde, 0xad]); 6],
        // Bad kinds and a non-UTF-8 destination.
        good("?", b"d"),
        good("CC", b"d"),
        good("", b"d"),
        good("C", &[0xff, 0xfe]),
        // Publishes that are not fanout messages, or have no destination.
        vec![
            Bytes::new(),
            Bytes::from_static(VERSION),
            b("C"),
            b("m"),
            b("d"),
            b("{}"),
        ],
        vec![
            Bytes::new(),
            Bytes::from_static(VERSION),
            b("R"),
            b("m"),
            b(""),
            b("{}"),
        ],
        vec![
            Bytes::new(),
            Bytes::from_static(VERSION),
            b("F"),
            b("m"),
            b(""),
            b("{}"),
        ],
    ];
    // A wrong version.
    let mut old = good("C", b"d");
    old[1] = b("omsg-zmq/0");
    bad.push(old);
    let count = bad.len() as u64;
    for frames in bad {
        send(&mut a, frames).await;
    }

    // The proxy reads a DEALER's messages in order: the good one comes after them all.
    send(&mut a, good("C", b"rpc/x/t/nB")).await;
    let (from, frame) = routed(recv(&mut b_node).await);
    assert_eq!((from, frame.kind, frame.id), (b("nA"), Kind::Call, b("m1")));
    assert!(
        quiet(&mut a, Duration::from_millis(100)).await,
        "nothing is refused"
    );

    let stats = stats_until(&proxy, |s| s.forwarded == 1).await;
    assert_eq!(
        stats,
        ProxyStats {
            forwarded: 1,
            refused: 1,
            malformed: count,
            ..ProxyStats::default()
        }
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_dropped_proxy_stops() {
    let proxy = local_proxy().await;
    let router = proxy.router_address().to_string();
    drop(proxy);
    // The listener goes away with the relay task.
    let deadline = Instant::now() + PATIENCE;
    while tokio::net::TcpStream::connect(&router).await.is_ok() {
        assert!(Instant::now() < deadline, "the router still accepts");
        sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_binary_relays_and_stops_on_sigterm() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::process::Command;

    let mut child = Command::new(env!("CARGO_BIN_EXE_messaging-zmq-proxy"))
        .args(["--router", "127.0.0.1:0", "--publisher", "127.0.0.1:0"])
        .args(["--log", "warn"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start messaging-zmq-proxy");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = timeout(PATIENCE, lines.next_line())
        .await
        .expect("the address line in time")
        .unwrap()
        .expect("an address line");
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 3, "{line}");
    assert_eq!(fields[0], "messaging-zmq-proxy");
    let router = fields[1].strip_prefix("router=").expect(&line);
    let publisher = fields[2].strip_prefix("publisher=").expect(&line);
    assert!(
        router.starts_with("127.0.0.1:") && !router.ends_with(":0"),
        "{line}"
    );
    assert!(
        publisher.starts_with("127.0.0.1:") && publisher != router,
        "{line}"
    );

    let mut a = node("nA", router).await;
    let mut b_node = node("nB", router).await;
    registered(&mut b_node, "probe-b").await;
    let cast = Frame::new(Kind::Cast, "m1", "rpc/x/t/nB", "{}");
    send_to(&mut a, "nB", cast.clone()).await;
    let (from, got) = routed(recv(&mut b_node).await);
    assert_eq!((from, got), (b("nA"), cast));

    let pid = child.id().expect("running").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let status = timeout(PATIENCE, child.wait())
        .await
        .expect("the proxy stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// A node that stops reading fills the proxy's queues for it (ZeroMQ's, 100 000
/// messages, then the proxy's own): messages to it are then dropped and counted, other
/// nodes are still served, and it is served again once it reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_peer_holds_up_only_itself() {
    let proxy = local_proxy().await;
    let mut a = node("nA", proxy.router_address()).await;
    let mut slow = node("nSlow", proxy.router_address()).await;
    let mut c = node("nC", proxy.router_address()).await;
    let mut d = node("nD", proxy.router_address()).await;
    registered(&mut slow, "probe-slow").await;
    registered(&mut c, "probe-c").await;
    registered(&mut d, "probe-d").await;

    // Flood the node that does not read until the proxy gives up on some of it.
    let body = Bytes::from(vec![b'x'; 200]);
    let mut sent = 0u64;
    while proxy.stats().dropped == 0 {
        for _ in 0..1000 {
            let frame = Frame::new(Kind::Cast, "flood", "rpc/x/t/nSlow", body.clone());
            send_to(&mut a, "nSlow", frame).await;
        }
        sent += 1000;
        assert!(sent < 2_000_000, "never dropped: {:?}", proxy.stats());
    }

    // Another node is still served, by a sender that did not flood (the flooder's own
    // backlog is ahead of anything it sends).
    let started = Instant::now();
    send_to(
        &mut d,
        "nC",
        Frame::new(Kind::Cast, "mc", "rpc/x/t/nC", "{}"),
    )
    .await;
    let (from, frame) = routed(recv(&mut c).await);
    assert_eq!((from, frame.id), (b("nD"), b("mc")));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Once the slow node reads, it gets new messages again.
    let reader = tokio::spawn(async move {
        loop {
            let (_, frame) = routed(recv(&mut slow).await);
            if frame.id == b("resumed") {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reader.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the slow node never got a new message"
        );
        let frame = Frame::new(Kind::Cast, "resumed", "rpc/x/t/nSlow", "{}");
        send_to(&mut d, "nSlow", frame).await;
        sleep(Duration::from_millis(200)).await;
    }
    reader.await.unwrap();
    proxy.shutdown().await;
}
