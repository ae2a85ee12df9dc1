//! `messaging-zmq-proxy`: the relay of the ZeroMQ driver for nodes that do not connect
//! to each other directly (`[oslo_messaging_zmq] use_router_proxy`). See
//! `driver_zmq::proxy` for the protocol.
//!
//! ```sh
//! messaging-zmq-proxy --router 0.0.0.0:5700 --publisher 0.0.0.0:5701 --log debug
//! ```
//!
//! Once bound it prints one line on stdout, `messaging-zmq-proxy router=<host:port>
//! publisher=<host:port>` (with the ports picked when 0 was given); logs go to stderr.
//! It stops on SIGINT or SIGTERM. Exit status: 0 after a signal, 1 when it cannot bind,
//! 2 for a bad command line or log filter.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use driver_zmq::proxy::Proxy;

/// The command line.
#[derive(Parser)]
#[command(
    name = "messaging-zmq-proxy",
    version,
    about = "Relay messages between ZeroMQ messaging nodes that do not connect directly",
    after_help = "On start prints `messaging-zmq-proxy router=<addr> publisher=<addr>` on \
stdout. Stops on SIGINT or SIGTERM."
)]
struct Args {
    /// Where nodes connect their DEALER (host:port; port 0 picks a free one; host * or
    /// 0.0.0.0 for every interface).
    #[arg(long, default_value = "0.0.0.0:5700", value_name = "HOST:PORT")]
    router: String,
    /// Where nodes connect their SUB for fanout messages (host:port).
    #[arg(long, default_value = "0.0.0.0:5701", value_name = "HOST:PORT")]
    publisher: String,
    /// Log filter, RUST_LOG syntax (e.g. `debug`, `driver_zmq=debug,info`); default:
    /// RUST_LOG, else `info`.
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let filter = args
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".to_string());
    let filter = match EnvFilter::try_new(&filter) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("messaging-zmq-proxy: bad log filter {filter:?}: {e}");
            return ExitCode::from(2);
        }
    };
    // stdout carries only the address line, which scripts read.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // No colour codes in journald or log files.
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    // Listening for signals before the address line is out: whoever reads it may
    // signal at once.
    let stop = match StopSignal::install() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("messaging-zmq-proxy: cannot listen for signals: {e}");
            return ExitCode::from(1);
        }
    };
    let proxy = match Proxy::bind(&args.router, &args.publisher).await {
        Ok(proxy) => proxy,
        Err(e) => {
            eprintln!("messaging-zmq-proxy: {e}");
            return ExitCode::from(1);
        }
    };
    let mut stdout = std::io::stdout().lock();
    let printed = writeln!(
        stdout,
        "messaging-zmq-proxy router={} publisher={}",
        proxy.router_address(),
        proxy.publisher_address()
    )
    .and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = printed {
        // Whoever started us may not read stdout; the proxy still works.
        tracing::warn!(error = %e, "could not print the addresses on stdout");
    }

    let signal = stop.wait().await;
    tracing::info!(signal, "stopping");
    proxy.shutdown().await;
    ExitCode::SUCCESS
}

/// SIGINT and (on Unix) SIGTERM, listened for from `install` on.
struct StopSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn install() -> std::io::Result<StopSignal> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(StopSignal {
                term: signal(SignalKind::terminate())?,
                int: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(StopSignal {})
        }
    }

    /// Waits for one and names it.
    async fn wait(mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
            "ctrl-c"
        }
    }
}
