//! `omsg call` and `omsg cast`.

use std::time::Duration;

use clap::Args;
use messaging::{RpcClient, Target};
use serde_json::Value;
use tokio::time::Instant;

use crate::common::{self, Failure, Outcome, Purpose, TransportArgs};

/// How much longer than `--timeout` connecting, sending and waiting together may take
/// before the command is cut short; the reply wait itself gets the whole `--timeout`, so
/// the client's own timeout error (which says more) normally comes first.
const GUARD_GRACE: Duration = Duration::from_secs(1);

/// What `call` and `cast` share: where the message goes and what it says.
#[derive(Args, Debug)]
pub struct RpcArgs {
    #[command(flatten)]
    pub transport: TransportArgs,
    /// Topic of the servers, e.g. compute.
    #[arg(long, value_name = "T")]
    pub topic: String,
    /// One server of the topic (default: any one of them).
    #[arg(long, value_name = "S")]
    pub server: Option<String>,
    /// Exchange (default: the configuration's control_exchange, openstack).
    #[arg(long, value_name = "E")]
    pub exchange: Option<String>,
    /// RPC namespace of the endpoint (default: the null namespace).
    #[arg(long, value_name = "N")]
    pub namespace: Option<String>,
    /// Version the message needs, major.minor (the server's endpoint must be compatible).
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// Seconds to wait, fractions allowed. call: for the reply (default: the
    /// configuration's rpc_response_timeout, 60); cast: for connecting and handing the
    /// message to the transport (default: the same). Connecting counts against it too.
    #[arg(long, value_name = "SECS", value_parser = common::seconds)]
    pub timeout: Option<Duration>,
    /// Request context as a JSON object, e.g. '{"user": "admin", "request_id": "req-1"}'.
    #[arg(long, value_name = "JSON")]
    pub context: Option<String>,
    /// The method to run.
    #[arg(value_name = "METHOD")]
    pub method: String,
    /// Keyword arguments as a JSON object, e.g. '{"a": 1, "b": 2}'.
    #[arg(value_name = "ARGS_JSON", default_value = "{}")]
    pub args: String,
}

/// The long help of `omsg call`.
pub const CALL_ABOUT: &str = "Call an RPC method and print its result as JSON on stdout.\n\n\
Exit status: 0 with the result; 1 when the server raised (class, module and message on \
stderr); 2 on timeout; 3 on any other failure.";

/// `omsg call`.
#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  omsg call --url rabbit://guest:guest@localhost:5672/ --topic calc add '{\"a\": 1, \"b\": 2}'"
)]
pub struct CallArgs {
    #[command(flatten)]
    pub rpc: RpcArgs,
}

/// The long help of `omsg cast`.
pub const CAST_ABOUT: &str = "Cast an RPC method: send it without waiting for a result (at most once). \
It goes to --server, else to one server of the topic, or with --fanout to every server of \
the topic.\n\nExit status: 0 once the transport took the message; 2 on timeout; 3 on any \
other failure.";

/// `omsg cast`.
#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  omsg cast --config /etc/nova/nova.conf --topic compute --fanout reset '{}'"
)]
pub struct CastArgs {
    #[command(flatten)]
    pub rpc: RpcArgs,
    /// Send to every server of the topic.
    #[arg(long)]
    pub fanout: bool,
}

/// What a prepared request needs: the client, the context, the arguments, the deadline.
struct Prepared {
    transport: messaging::Transport,
    client: RpcClient,
    context: messaging::Context,
    args: serde_json::Map<String, Value>,
    deadline: Instant,
    timeout: Duration,
}

/// Checks the arguments (before connecting, so mistakes need no broker), then connects
/// within the timeout.
async fn prepare(rpc: &RpcArgs, fanout: bool) -> Outcome<Prepared> {
    let args = common::json_object(&rpc.args, "ARGS_JSON")?;
    let context = common::context(rpc.context.as_deref())?;
    if let Some(version) = &rpc.version {
        version.parse::<messaging::Version>()?;
    }
    let cfg = rpc.transport.config(Purpose::Rpc)?;
    let timeout = rpc
        .timeout
        .unwrap_or(Duration::from_secs(cfg.default.rpc_response_timeout));
    let deadline = Instant::now() + timeout;
    let transport = tokio::time::timeout_at(
        deadline + GUARD_GRACE,
        rpc.transport.open(&cfg, Purpose::Rpc),
    )
    .await
    .map_err(|_| {
        Failure::Timeout(format!(
            "could not connect to the transport within {timeout:?}"
        ))
    })??;
    let mut target = Target::topic(&rpc.topic).fanout(fanout);
    target.exchange = rpc.exchange.clone();
    target.namespace = rpc.namespace.clone();
    target.version = rpc.version.clone();
    target.server = rpc.server.clone();
    let client = RpcClient::new(&transport, target);
    Ok(Prepared {
        transport,
        client,
        context,
        args,
        deadline,
        timeout,
    })
}

/// Runs `omsg call`: prints the result as one line of JSON.
pub async fn call(args: CallArgs) -> Outcome {
    let rpc = &args.rpc;
    let p = prepare(rpc, false).await?;
    let client = p.client.prepare().timeout(p.timeout);
    let outcome = tokio::time::timeout_at(
        p.deadline + GUARD_GRACE,
        client.call::<_, Value>(&p.context, &rpc.method, &p.args),
    )
    .await;
    common::close(&p.transport).await;
    let result = outcome.map_err(|_| {
        Failure::Timeout(format!(
            "no reply to {} from {} within {:?}",
            rpc.method,
            client.target(),
            p.timeout
        ))
    })??;
    common::print_json_line(&result)
}

/// Runs `omsg cast`: prints nothing on success.
pub async fn cast(args: CastArgs) -> Outcome {
    let rpc = &args.rpc;
    let p = prepare(rpc, args.fanout).await?;
    let outcome = tokio::time::timeout_at(
        p.deadline + GUARD_GRACE,
        p.client.cast(&p.context, &rpc.method, &p.args),
    )
    .await;
    common::close(&p.transport).await;
    outcome.map_err(|_| {
        Failure::Timeout(format!(
            "could not hand {} to the transport within {:?}",
            rpc.method, p.timeout
        ))
    })??;
    Ok(())
}
