//! `omsg`: the operator's command-line tool for any registered transport: call and cast
//! RPC methods, run a test RPC server, send and watch notifications.
//!
//! Exit status: 0 success, 1 the server raised (remote error), 2 timeout, 3 any other
//! failure (usage, bad URL or JSON, unknown driver, configuration, delivery). Results and
//! notifications go to stdout as JSON; everything else (errors, logs) to stderr.

mod common;
mod listen;
mod notify;
mod rpc;
mod serve;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// How long the runtime may take to finish background work (driver connections) after
/// the command is done, so that a stuck driver task cannot keep the process alive.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The command line.
#[derive(Parser)]
#[command(
    name = "omsg",
    version,
    about = "Send and receive oslo.messaging RPC and notifications over any registered transport",
    long_about = "Send and receive oslo.messaging RPC and notifications over any registered \
transport (rabbit://, memory://, ...), wire compatible with OpenStack's Python services.\n\n\
The transport URL comes from --url, else from --config FILE (an oslo.messaging INI file such \
as nova.conf, or the same in TOML). Results and notifications are printed as JSON on stdout; \
errors and logs (RUST_LOG, default warn) go to stderr.",
    after_help = "Exit status: 0 success, 1 the server raised an error, 2 timeout, 3 any other \
failure (usage, bad URL or JSON, unknown driver, configuration, delivery)."
)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The commands.
#[derive(Subcommand)]
enum Command {
    /// Call an RPC method and print its result as JSON.
    #[command(long_about = rpc::CALL_ABOUT)]
    Call(rpc::CallArgs),
    /// Cast an RPC method (fire and forget), to one server, any server or all (--fanout).
    #[command(long_about = rpc::CAST_ABOUT)]
    Cast(rpc::CastArgs),
    /// Send one notification.
    #[command(long_about = notify::ABOUT)]
    Notify(notify::NotifyArgs),
    /// Print notifications as JSON lines, one per notification.
    #[command(long_about = listen::ABOUT)]
    Listen(listen::ListenArgs),
    /// Run an RPC server with test methods echo, add, fail and sleep.
    #[command(long_about = serve::ABOUT)]
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 on usage errors, which here means "timeout": remap to 3.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(common::EXIT_OTHER)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only for a person watching, not in captured logs.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(common::EXIT_OTHER);
        }
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Call(args) => rpc::call(args).await,
            Command::Cast(args) => rpc::cast(args).await,
            Command::Notify(args) => notify::run(args).await,
            Command::Listen(args) => listen::run(args).await,
            Command::Serve(args) => serve::run(args).await,
        }
    });
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            failure.report();
            ExitCode::from(failure.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn subcommand_version_options_are_not_the_program_version() {
        let cli = Cli::try_parse_from([
            "omsg",
            "call",
            "--url",
            "memory://",
            "--topic",
            "t",
            "--version",
            "1.2",
            "m",
        ])
        .unwrap();
        let Command::Call(args) = cli.command else {
            panic!("not a call")
        };
        assert_eq!(args.rpc.version.as_deref(), Some("1.2"));
    }

    #[test]
    fn usage_errors_are_reported_to_stderr() {
        let err = Cli::try_parse_from(["omsg", "call", "--bogus"])
            .err()
            .unwrap();
        assert!(err.use_stderr());
        let help = Cli::try_parse_from(["omsg", "call", "--help"])
            .err()
            .unwrap();
        assert!(!help.use_stderr());
    }
}
