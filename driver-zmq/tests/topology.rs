//! How many connections N clients × M servers make: directly, each client connects
//! to each server it calls (N × M); through the proxy, each node connects once to its
//! ROUTER and once to its PUB (N + M each). Counted in the kernel's table of
//! established TCP connections (`/proc/net/tcp`), among this process's sockets.

mod support;

use std::time::Duration;

use driver_zmq::proxy::Proxy;
use messaging_core::rpc::{Endpoint, RpcServer};
use messaging_core::testkit::unique;
use messaging_core::{Context, RemoteError, RpcClient, Target, Transport};
use serde_json::{Value, json};

const CLIENTS: usize = 3;
const SERVERS: usize = 4;

/// The last port the kernel hands out to connecting sockets.
fn ephemeral_end() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(60999)
}

/// The inodes of this process's sockets, so that connections of other processes
/// (other test binaries binding ports in the same range) are not counted.
fn own_sockets() -> std::collections::HashSet<String> {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect()
}

/// This process's established IPv4 connections to 127.0.0.1 on one of `ports`, as
/// (local port, remote port).
fn connections_to(ports: &[u16]) -> Vec<(u16, u16)> {
    let own = own_sockets();
    let port = |address: &str| {
        let (_, port) = address.split_once(':')?;
        u16::from_str_radix(port, 16).ok()
    };
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, remote) = (fields.get(1)?, fields.get(2)?);
            let (state, inode) = (fields.get(3)?, fields.get(9)?);
            let to = port(remote)?;
            (*state == "01"
                && remote.starts_with("0100007F:")
                && ports.contains(&to)
                && own.contains(*inode))
            .then_some((port(local)?, to))
        })
        .collect()
}

/// Starts the servers and has every client call every server; returns the
/// transports (kept alive) and the servers.
async fn all_to_all(url: &str) -> (Vec<Transport>, Vec<RpcServer>) {
    let topic = unique("topology");
    let mut transports = Vec::new();
    let mut servers = Vec::new();
    for i in 0..SERVERS {
        let transport = support::transport(url).await.unwrap();
        let endpoint = Endpoint::new().method("ping", |_c: Context, _: Value| async {
            Ok::<_, RemoteError>("pong")
        });
        servers.push(
            RpcServer::new(
                &transport,
                Target::topic(topic.clone()).server(format!("s{i}")),
            )
            .endpoint(endpoint)
            .start()
            .await
            .unwrap(),
        );
        transports.push(transport);
    }
    for _ in 0..CLIENTS {
        let transport = support::transport(url).await.unwrap();
        let client = RpcClient::new(&transport, Target::topic(topic.clone()))
            .timeout(Duration::from_secs(5));
        for i in 0..SERVERS {
            let pong: String = client
                .prepare()
                .server(format!("s{i}"))
                .call(&Context::new(), "ping", json!({}))
                .await
                .unwrap();
            assert_eq!(pong, "pong");
        }
        transports.push(transport);
    }
    (transports, servers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_connections_grow_as_clients_times_servers() {
    support::init_logging();
    // The servers' ports are the ones counted: a range of their own, above the
    // kernel's ephemeral ports (ip_local_port_range), so no client end falls in it.
    let lo = ephemeral_end().saturating_add(1).min(u16::MAX - 100);
    let hi = lo + 99;
    let url = format!(
        "zmq+dummy://?{}&rpc_zmq_min_port={lo}&rpc_zmq_max_port={hi}",
        support::LOOPBACK
    );
    let ports: Vec<u16> = (lo..=hi).collect();
    let before = connections_to(&ports);
    let (transports, servers) = all_to_all(&url).await;
    let after = connections_to(&ports);
    let new: Vec<_> = after.iter().filter(|c| !before.contains(c)).collect();
    assert_eq!(
        new.len(),
        CLIENTS * SERVERS,
        "one connection per client and server; new (local, server) ports: {new:?}"
    );
    drop(servers);
    drop(transports);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_proxy_each_node_connects_once() {
    support::init_logging();
    let proxy = Proxy::bind("127.0.0.1:0", "127.0.0.1:0").await.unwrap();
    let port = |address: &str| -> u16 { address.rsplit(':').next().unwrap().parse().unwrap() };
    let (router, publisher) = (
        port(proxy.router_address()),
        port(proxy.publisher_address()),
    );
    let url = format!(
        "zmq+dummy://?{}&use_router_proxy=true&zmq_proxy_router={}&zmq_proxy_publisher={}",
        support::LOOPBACK,
        proxy.router_address(),
        proxy.publisher_address()
    );
    let (transports, servers) = all_to_all(&url).await;
    assert_eq!(
        connections_to(&[router]).len(),
        CLIENTS + SERVERS,
        "one DEALER per node to the proxy's ROUTER"
    );
    assert_eq!(
        connections_to(&[publisher]).len(),
        CLIENTS + SERVERS,
        "one SUB per node to the proxy's PUB"
    );
    assert!(proxy.stats().forwarded >= (2 * CLIENTS * SERVERS) as u64);
    drop(servers);
    drop(transports);
    proxy.shutdown().await;
}
