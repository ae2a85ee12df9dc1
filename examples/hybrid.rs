//! Hybrid messaging in one program: an RPC server and client on one transport,
//! a notifier and a listener on another (or the same).
//!
//! ```text
//! cargo run --example hybrid                                   # everything on memory://
//! cargo run --example hybrid -- --config /etc/nova/nova.conf   # oslo-style INI
//! cargo run --example hybrid -- --rpc-url memory:///rpc --notify-url memory:///events
//! # oslo's scenario02: RPC on RabbitMQ, notifications on Kafka (scripts/services starts both)
//! cargo run --example hybrid -- --rpc-url rabbit://guest:guest@127.0.0.1:5672/ --notify-url kafka://127.0.0.1:9092
//! cargo run --example hybrid -- --config examples/hybrid.ini  # the same from an INI file
//! cargo run --example hybrid -- --metrics 127.0.0.1:9464 --linger 60  # Prometheus page
//! ```
//!
//! It exits 1 when a request or the notification does not arrive within 10 s.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use messaging::notify::{
    Notification, NotificationListener, NotificationResult, Notifier, Priority,
};
use messaging::{Config, Context, Endpoint, Error, RemoteError, RpcClient, RpcServer, Target};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(about = "RPC and notifications over the transports of your choice")]
struct Args {
    /// An oslo.messaging style configuration file (INI, or TOML by extension).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The RPC transport URL (overrides [DEFAULT] transport_url).
    #[arg(long)]
    rpc_url: Option<String>,
    /// The notification transport URL (overrides [oslo_messaging_notifications] transport_url).
    #[arg(long)]
    notify_url: Option<String>,
    /// Serve the metrics as a Prometheus page on http://ADDR/metrics.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Seconds to keep running (and serving the metrics) after the exchange.
    #[arg(long, default_value_t = 0)]
    linger: u64,
}

#[derive(Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

#[derive(Deserialize)]
struct Divide {
    a: i64,
    b: i64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> messaging::Result<()> {
    if let Some(addr) = args.metrics {
        messaging::prometheus::serve(addr).map_err(|e| {
            Error::Config(format!("cannot serve the metrics on {addr}: {e}").into())
        })?;
        println!("metrics:                http://{addr}/metrics");
    }
    let mut cfg = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => {
            // The sections are `#[non_exhaustive]`: start from the defaults.
            let mut cfg = Config::default();
            cfg.default.transport_url = "memory://".into();
            cfg
        }
    };
    if let Some(url) = args.rpc_url {
        cfg.default.transport_url = url;
    }
    if let Some(url) = args.notify_url {
        cfg.notifications.transport_url = Some(url);
    }
    let drivers = messaging::registry();
    let rpc = drivers.rpc_transport(&cfg).await?;
    let events = drivers.notification_transport(&cfg).await?;
    println!("RPC transport:          {}", rpc.url().masked());
    println!("notification transport: {}", events.url().masked());

    // The server side: one line per method; errors choose the Python class.
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<String>();
    let api = |host: &'static str| {
        let (add_tx, reset_tx) = (seen_tx.clone(), seen_tx.clone());
        Endpoint::new()
            .version("1.3")
            .method("add", move |_ctx: Context, Add { a, b }| {
                let tx = add_tx.clone();
                async move {
                    let _ = tx.send(format!("[server {host}] add({a}, {b})"));
                    Ok::<_, RemoteError>(a + b)
                }
            })
            .method("divide", |_ctx: Context, Divide { a, b }| async move {
                if b == 0 {
                    // An expected error: the caller sees it, the server logs it at debug level only.
                    return Err(RemoteError::new(
                        "ZeroDivisionError",
                        "builtins",
                        "division by zero",
                    )
                    .expected());
                }
                Ok(a / b)
            })
            .method("reset", move |_ctx: Context, _: messaging::NoArgs| {
                let tx = reset_tx.clone();
                async move {
                    let _ = tx.send(format!("[server {host}] reset"));
                    Ok::<_, RemoteError>(())
                }
            })
    };
    let host1 = RpcServer::new(&rpc, Target::topic("compute").server("host1"))
        .endpoint(api("host1"))
        .start()
        .await?;
    let host2 = RpcServer::new(&rpc, Target::topic("compute").server("host2"))
        .endpoint(api("host2"))
        .start()
        .await?;

    // The client side.
    let ctx = Context::new()
        .with("user", "demo")
        .with("request_id", "req-1");
    let client = RpcClient::new(&rpc, Target::topic("compute")).timeout(Duration::from_secs(10));
    let sum: i64 = client.call(&ctx, "add", json!({"a": 1, "b": 2})).await?;
    println!("[client] call add(1, 2) = {sum}");
    client
        .prepare()
        .server("host2")
        .cast(&ctx, "reset", json!({}))
        .await?;
    println!("[client] cast reset to host2");
    client
        .prepare()
        .fanout(true)
        .cast(&ctx, "reset", json!({}))
        .await?;
    println!("[client] fanout cast reset to every server");
    match client
        .call::<_, i64>(&ctx, "divide", json!({"a": 1, "b": 0}))
        .await
    {
        Err(Error::Remote(e)) => println!(
            "[client] call divide(1, 0) failed: {}.{}: {}",
            e.module, e.class, e.message
        ),
        other => println!("[client] call divide(1, 0) unexpectedly gave {other:?}"),
    }

    // Notifications.
    let (note_tx, mut note_rx) = mpsc::unbounded_channel::<String>();
    let listener = NotificationListener::new(&events, [Target::topic("notifications")])
        .pool("billing")
        .filter(messaging::NotificationFilter::new().event_type(r"compute\.instance\."))
        .on(Priority::Info, move |n: Notification| {
            let tx = note_tx.clone();
            async move {
                let _ = tx.send(format!(
                    "[listener] {} from {}: {}",
                    n.event_type, n.publisher_id, n.payload
                ));
                NotificationResult::Handled
            }
        })
        .start()
        .await?;
    let notifier = Notifier::new(&events, "compute.host1");
    notifier
        .info(&ctx, "compute.instance.create.end", json!({"id": 42}))
        .await;
    notifier
        .info(&ctx, "compute.ignored.by.filter", json!({}))
        .await;
    println!("[notifier] sent compute.instance.create.end and compute.ignored.by.filter");

    // What the other sides saw: 1 add + 1 directed reset + 2 fanout resets; 1 notification.
    let mut missing = Vec::new();
    for n in 1..=4 {
        match tokio::time::timeout(Duration::from_secs(10), seen_rx.recv()).await {
            Ok(Some(line)) => println!("{line}"),
            _ => {
                missing.push(format!("{} of 4 server requests", 5 - n));
                break;
            }
        }
    }
    match tokio::time::timeout(Duration::from_secs(10), note_rx.recv()).await {
        Ok(Some(line)) => println!("{line}"),
        _ => missing.push("the compute.instance.create.end notification".into()),
    }

    listener.stop().await;
    listener.wait().await?;
    for server in [&host1, &host2] {
        server.stop().await;
        server.wait().await?;
    }
    if !missing.is_empty() {
        return Err(Error::Timeout(
            format!("nothing arrived within 10 s for: {}", missing.join(", ")).into(),
        ));
    }
    // Time to look at the metrics page, if asked for.
    tokio::time::sleep(Duration::from_secs(args.linger)).await;
    Ok(())
}
