//! `omsg serve`: an RPC server with a few test methods, for checking a deployment and
//! for driving clients (Rust or Python) against.

use std::future::Future;
use std::time::Duration;

use clap::Args;
use messaging::{Context, Endpoint, RemoteError, RpcServer, Target};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value, json};

use crate::common::{self, Failure, Outcome, Purpose, TransportArgs};

/// The long help of `omsg serve`.
pub const ABOUT: &str = "Run an RPC server on --topic/--server with these methods:\n  \
echo(data)       returns data\n  \
add(a, b)        returns a + b (numbers, strings or lists)\n  \
fail(message)    raises ValueError(message) (module builtins, as Python raises it)\n  \
sleep(seconds)   sleeps (fractions allowed), then returns seconds\n\n\
Prints `ready` on stdout once it consumes, then one JSON line per request it starts \
handling: {\"method\": ..., \"args\": {...}}. SIGINT or SIGTERM stops it: no new requests, \
in-flight ones finish, exit 0; a second signal exits at once (status 3).";

/// `omsg serve`.
#[derive(Args, Debug)]
#[command(
    after_help = "Example:\n  omsg serve --url rabbit://guest:guest@localhost:5672/ --topic calc --server host1\n  \
omsg call --url rabbit://guest:guest@localhost:5672/ --topic calc add '{\"a\": 1, \"b\": 2}'"
)]
pub struct ServeArgs {
    #[command(flatten)]
    pub transport: TransportArgs,
    /// Topic to serve, e.g. calc.
    #[arg(long, value_name = "T")]
    pub topic: String,
    /// This server's name within the topic, e.g. host1.
    #[arg(long, value_name = "S")]
    pub server: String,
    /// Exchange (default: the configuration's control_exchange, openstack).
    #[arg(long, value_name = "E")]
    pub exchange: Option<String>,
    /// Namespace of the endpoint (default: the null namespace).
    #[arg(long, value_name = "N")]
    pub namespace: Option<String>,
    /// Version the endpoint implements, major.minor (default 1.0).
    #[arg(long, value_name = "V")]
    pub version: Option<String>,
    /// Serve the metrics (oslo's RPC families and the driver's) as a Prometheus page on
    /// http://ADDR/metrics, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> Outcome {
    if let Some(version) = &args.version {
        version.parse::<messaging::Version>()?;
    }
    if let Some(addr) = args.metrics {
        messaging::prometheus::serve(addr)
            .map_err(|e| Failure::other(format!("cannot serve the metrics on {addr}: {e}")))?;
    }
    let cfg = args.transport.config(Purpose::Rpc)?;
    let transport = tokio::select! {
        t = args.transport.open(&cfg, Purpose::Rpc) => t?,
        () = common::shutdown_signal() => return Ok(()),
    };
    let mut target = Target::topic(&args.topic).server(&args.server);
    target.exchange = args.exchange.clone();
    let mut endpoint = test_methods();
    if let Some(ns) = &args.namespace {
        endpoint = endpoint.namespace(ns);
    }
    if let Some(v) = &args.version {
        endpoint = endpoint.version(v);
    }
    let server = tokio::select! {
        s = RpcServer::new(&transport, target).endpoint(endpoint).start() => s?,
        () = common::shutdown_signal() => return Ok(()),
    };
    common::print_line("ready")?;
    tracing::info!(topic = %args.topic, server = %args.server, url = %transport.url().masked(), "serving");
    common::shutdown_signal().await;
    tracing::info!("stopping: waiting for in-flight requests");
    server.stop().await;
    tokio::select! {
        done = server.wait() => done?,
        () = common::shutdown_signal() => {
            return Err(Failure::other("second signal: exiting without waiting for in-flight requests"));
        }
    }
    common::close(&transport).await;
    Ok(())
}

/// `echo`'s arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Echo {
    data: Value,
}

/// `add`'s arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Add {
    a: Value,
    b: Value,
}

/// `fail`'s arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fail {
    message: String,
}

/// `sleep`'s arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Sleep {
    seconds: Number,
}

/// The endpoint with the test methods.
fn test_methods() -> Endpoint {
    let endpoint = Endpoint::new();
    let endpoint = method(endpoint, "echo", |Echo { data }| async move { Ok(data) });
    let endpoint = method(endpoint, "add", |Add { a, b }| async move {
        add(a, b).map_err(|e| *e)
    });
    let endpoint = method(endpoint, "fail", |Fail { message }| async move {
        Err::<Value, _>(RemoteError::value_error(message))
    });
    method(endpoint, "sleep", |Sleep { seconds }| async move {
        let secs = seconds.as_f64().unwrap_or(f64::NAN);
        if secs < 0.0 {
            // Python's time.sleep says the same.
            return Err(RemoteError::value_error(
                "sleep length must be non-negative",
            ));
        }
        let pause = Duration::try_from_secs_f64(secs).map_err(|_| {
            RemoteError::value_error(format!("sleep length {seconds} is too large"))
        })?;
        tokio::time::sleep(pause).await;
        Ok(Value::Number(seconds))
    })
}

/// Registers `name`: announces each request on stdout, then parses the keyword
/// arguments into `A` (a mismatch is a `TypeError`, as Python raises for bad arguments).
fn method<A, F, Fut>(endpoint: Endpoint, name: &'static str, handler: F) -> Endpoint
where
    A: DeserializeOwned + Send + 'static,
    F: Fn(A) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, RemoteError>> + Send + 'static,
{
    endpoint.method(name, move |_ctx: Context, args: Map<String, Value>| {
        // The context is not shown: it may carry credentials.
        let line = json!({"method": name, "args": &args});
        if let Err(e) = common::print_json_line(&line) {
            e.report();
        }
        let call = serde_json::from_value::<A>(Value::Object(args))
            .map_err(|e| RemoteError::type_error(format!("{name}() got invalid arguments: {e}")))
            .map(&handler);
        async move { call?.await }
    })
}

/// `a + b` as Python computes it for numbers, strings and lists.
fn add(a: Value, b: Value) -> Result<Value, Box<RemoteError>> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let exact = match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
                (Some(x), Some(y), ..) => Some(i128::from(x) + i128::from(y)),
                (_, _, Some(x), Some(y)) => Some(i128::from(x) + i128::from(y)),
                (Some(x), _, _, Some(y)) => Some(i128::from(x) + i128::from(y)),
                (_, Some(y), Some(x), _) => Some(i128::from(x) + i128::from(y)),
                _ => None,
            };
            let exact = exact.and_then(|sum| {
                i64::try_from(sum)
                    .map(Number::from)
                    .or_else(|_| u64::try_from(sum).map(Number::from))
                    .ok()
            });
            exact
                .or_else(|| Number::from_f64(x.as_f64()? + y.as_f64()?))
                .map(Value::Number)
                .ok_or_else(|| {
                    Box::new(RemoteError::new(
                        "OverflowError",
                        "builtins",
                        "result too large",
                    ))
                })
        }
        (Value::String(x), Value::String(y)) => Ok(Value::String(x + &y)),
        (Value::Array(mut x), Value::Array(y)) => {
            x.extend(y);
            Ok(Value::Array(x))
        }
        (a, b) => Err(Box::new(RemoteError::type_error(format!(
            "unsupported operand type(s) for +: '{}' and '{}'",
            python_type(&a),
            python_type(&b)
        )))),
    }
}

/// The Python type name of a JSON value, for error messages Python users recognise.
fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_follows_python() {
        assert_eq!(add(json!(2), json!(3)).unwrap(), json!(5));
        assert_eq!(add(json!(-2), json!(3)).unwrap(), json!(1));
        assert_eq!(add(json!(1.5), json!(1)).unwrap(), json!(2.5));
        assert_eq!(
            add(json!(u64::MAX), json!(-1)).unwrap(),
            json!(u64::MAX - 1)
        );
        assert_eq!(add(json!(i64::MAX), json!(1)).unwrap(), json!(1u64 << 63));
        assert_eq!(add(json!("ab"), json!("c")).unwrap(), json!("abc"));
        assert_eq!(add(json!([1]), json!([2])).unwrap(), json!([1, 2]));
        let e = add(json!(1), json!("x")).unwrap_err();
        assert!(e.is("builtins", "TypeError"));
        assert_eq!(
            e.message,
            "unsupported operand type(s) for +: 'int' and 'str'"
        );
    }
}
