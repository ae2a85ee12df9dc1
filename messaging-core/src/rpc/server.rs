//! The RPC server: listens on a target, dispatches to endpoints, replies.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::Either;
use serde_json::Value;
use tracing::Instrument;

use super::dispatcher::{AccessPolicy, Dispatcher, failure_of};
use super::endpoint::Endpoint;
use crate::driver::{IncomingRequest, Responder};
use crate::serializer::{NoOpSerializer, Serializer};
use crate::service::{Lifecycle, panic_message};
use crate::telemetry::rpc_metrics::{Invocation, ServedRequest};
use crate::telemetry::{self, TraceContext, catalog, trace_context};
use crate::wire::Request;
use crate::{Error, RemoteError, Result, Target, Transport};

/// Heartbeats are sent at least this often, whatever `_timeout` a caller sends.
const MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3600);

/// Default limit of requests dispatched at once (oslo's `executor_thread_pool_size`).
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;

/// Builds an [`RpcServer`].
pub struct RpcServerBuilder {
    transport: Transport,
    target: Target,
    endpoints: Vec<Endpoint>,
    policy: AccessPolicy,
    serializer: Arc<dyn Serializer>,
    max_concurrency: Option<usize>,
    ping: Option<bool>,
}

impl RpcServerBuilder {
    /// Adds an endpoint; endpoints are tried in the order added.
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoints.push(endpoint);
        self
    }

    /// The access policy (default: refuse `_private` methods).
    pub fn access_policy(mut self, policy: AccessPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The serializer of arguments, results and context.
    pub fn serializer(mut self, serializer: Arc<dyn Serializer>) -> Self {
        self.serializer = serializer;
        self
    }

    /// How many requests run at once (default `executor_thread_pool_size`, 64).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = Some(n.max(1));
        self
    }

    /// Answer `oslo_rpc_server_ping` with "pong" (default `rpc_ping_enabled`).
    pub fn ping(mut self, enabled: bool) -> Self {
        self.ping = Some(enabled);
        self
    }

    /// Checks the target and endpoints and builds the server, not yet started.
    pub fn build(self) -> Result<RpcServer> {
        let target = &self.target;
        if target.topic.as_deref().is_none_or(str::is_empty) || target.server.is_none() {
            return Err(Error::invalid_target(
                "a server target needs a topic and a server",
                target,
            ));
        }
        self.transport.require(|c| c.rpc, "RPC")?;
        let config = &self.transport.config().default;
        let dispatcher = Dispatcher::new(
            self.endpoints,
            self.policy,
            self.serializer,
            self.ping.unwrap_or(config.rpc_ping_enabled),
        )?;
        let max = self
            .max_concurrency
            .unwrap_or(config.executor_thread_pool_size.max(1));
        Ok(RpcServer {
            shared: Arc::new(Shared {
                transport: self.transport,
                target: self.target,
                dispatcher,
                max,
            }),
            lifecycle: Lifecycle::new(),
        })
    }

    /// Builds and starts the server.
    pub async fn start(self) -> Result<RpcServer> {
        let server = self.build()?;
        server.start().await?;
        Ok(server)
    }
}

struct Shared {
    transport: Transport,
    target: Target,
    dispatcher: Dispatcher,
    max: usize,
}

/// Serves requests on a target. `start`, then `stop` (no new requests) and `wait`
/// (in-flight requests finish); it can be started again afterwards.
pub struct RpcServer {
    shared: Arc<Shared>,
    lifecycle: Lifecycle,
}

impl RpcServer {
    /// A builder for a server on `target` (which needs a topic and a server).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(transport: &Transport, target: Target) -> RpcServerBuilder {
        RpcServerBuilder {
            transport: transport.clone(),
            target,
            endpoints: Vec::new(),
            policy: AccessPolicy::Default,
            serializer: Arc::new(NoOpSerializer),
            max_concurrency: None,
            ping: None,
        }
    }

    /// The target served.
    pub fn target(&self) -> &Target {
        &self.shared.target
    }

    /// Starts listening. Starting a running server logs a warning and does nothing;
    /// a server that was stopped and waited for starts again.
    pub async fn start(&self) -> Result<()> {
        let Some(claim) = self.lifecycle.begin_start("RPC server").await else {
            return Ok(());
        };
        let target = &self.shared.target;
        let listener = self
            .shared
            .transport
            .driver()
            .listen(target)
            .await
            .map_err(|e| e.listen_failure_on(|| target.to_string()))?;
        let shared = self.shared.clone();
        let backlog = metrics::gauge!(
            catalog::RPC_SERVER_BACKLOG,
            "topic" => target.topic.clone().unwrap_or_default(),
            "server" => target.server.clone().unwrap_or_default(),
        );
        claim.run(listener, self.shared.max, Some(backlog), move |incoming| {
            handle(&shared, incoming)
        });
        Ok(())
    }

    /// Stops taking new requests; requests already received are still dispatched.
    ///
    /// Stopping cannot fail (as [`NotificationListener::stop`](crate::notify::NotificationListener::stop)):
    /// it only tells the server to take nothing more. What goes wrong while it drains
    /// is reported by [`wait`](Self::wait).
    pub async fn stop(&self) {
        self.lifecycle.stop();
    }

    /// Waits until a stopped server has finished every in-flight request and released
    /// its listener. Returns at once if the server is not stopping.
    pub async fn wait(&self) -> Result<()> {
        self.lifecycle.wait(None).await
    }

    /// [`wait`](Self::wait) with a limit; `Error::WaitTimeout` when it runs out (the
    /// server keeps draining in the background and `wait` may be called again).
    pub async fn wait_timeout(&self, limit: Duration) -> Result<()> {
        self.lifecycle.wait(Some(limit)).await
    }
}

/// Starts one request and returns what finishes it. Synchronous up to the method's
/// first await, so the task of every request holds only what it needs after that.
fn handle(shared: &Shared, incoming: IncomingRequest) -> impl Future<Output = ()> + Send + use<> {
    let IncomingRequest { request, responder } = incoming;
    match request.decode() {
        Ok(request) => Either::Left(serve(shared, request, responder)),
        Err(e) => Either::Right(refuse_malformed(shared.target.to_string(), e, responder)),
    }
}

/// Logs a request that could not be decoded and drops it; a call is answered with
/// the reason, so that its caller need not wait for its timeout.
async fn refuse_malformed(target: String, error: Error, responder: Option<Box<dyn Responder>>) {
    tracing::warn!(%target, error = %error, "malformed RPC request dropped");
    let failure = RemoteError::runtime_error(format!("malformed request: {error}"));
    answer(responder, Err(failure)).await;
}

/// Sends a call's outcome to its caller; a cast has no responder and gets nothing.
async fn answer(
    responder: Option<Box<dyn Responder>>,
    outcome: std::result::Result<Value, RemoteError>,
) {
    if let Some(responder) = responder
        && let Err(e) = responder.reply(outcome).await
    {
        tracing::warn!(error = %e, "could not send the reply");
    }
}

/// [`handle`] for a decoded request: dispatched in a span with OpenTelemetry's
/// fields, under the trace context the caller sent, counted in oslo's server metric
/// families.
fn serve(
    shared: &Shared,
    request: Request,
    responder: Option<Box<dyn Responder>>,
) -> impl Future<Output = ()> + Send + use<> {
    let trace = TraceContext::from_map(request.context.as_map());
    let span = tracing::info_span!(
        "rpc.dispatch",
        otel.name =
            telemetry::rpc_span_name(request.namespace.as_deref(), &request.method, "receive"),
        otel.kind = "consumer",
        messaging.system = telemetry::messaging_system(shared.transport.driver().name()),
        messaging.destination.name = shared.target.topic.as_deref().unwrap_or(""),
        messaging.operation = "receive",
        messaging.message.id = request.reply.as_ref().map(|r| r.msg_id.as_str()),
        rpc.system = "oslo.messaging",
        rpc.method = request.method.as_str(),
        rpc.service = request.namespace.as_deref(),
        openstack.request_id = telemetry::request_id(request.context.as_map()),
        trace_id = trace.as_ref().map(TraceContext::trace_id),
        otel.status_code = tracing::field::Empty,
    );
    telemetry::adopt_parent(&span, trace.as_ref());
    let heartbeat_every = request
        .reply
        .as_ref()
        .and_then(|r| r.call_monitor_timeout)
        .map(|t| (t.trunc() / 2.0).floor())
        .filter(|s| *s >= 1.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .map(|d| d.min(MAX_HEARTBEAT_INTERVAL));
    // Kept for the failure log: the dispatcher takes the request whole.
    let method = request.method.clone();
    let series = shared.transport.rpc_series().server(
        &shared.target,
        ServedRequest {
            endpoint: shared.dispatcher.endpoint_name(&request),
            namespace: request.namespace.as_deref(),
            version: request.version.as_deref(),
            method: &request.method,
        },
        shared.transport.metrics_process_name(),
    );
    let in_flight = series.in_flight();
    let invocation = Invocation::start(series, shared.transport.oslo_metrics());
    let dispatch = span.in_scope(|| {
        trace_context::scoped_sync(trace.clone(), || {
            dispatch_caught(&shared.dispatcher, request)
        })
    });
    async move {
        let dispatch = trace_context::scoped(trace, dispatch);
        let outcome = match (&responder, heartbeat_every) {
            // Rare, and its timer makes a large future: boxed, so every request's
            // task stays small (tasks are moved into place when spawned).
            (Some(responder), Some(every)) => {
                Box::pin(with_heartbeats(dispatch, responder.as_ref(), every)).await
            }
            _ => dispatch.await,
        };
        let outcome = outcome.map_err(|e| {
            log_failure(&method, &e);
            failure_of(e)
        });
        match &outcome {
            Ok(_) => invocation.succeeded(),
            Err(failure) => {
                tracing::Span::current().record("otel.status_code", "error");
                invocation.failed(failure.class.clone());
            }
        }
        answer(responder, outcome).await;
        drop(in_flight);
    }
    .instrument(span)
}

/// Runs the request; a panicking method is a failure like any other.
fn dispatch_caught(
    dispatcher: &Dispatcher,
    request: Request,
) -> impl Future<Output = Result<Value>> + Send + use<> {
    use futures::FutureExt;
    let panicked = |panic: Box<dyn std::any::Any + Send>| {
        Err(Error::Remote(Box::new(RemoteError::runtime_error(
            format!("the endpoint panicked: {}", panic_message(&panic)),
        ))))
    };
    // The method runs up to its first await right here, so that part may panic too.
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        dispatcher.dispatch(request)
    }));
    async move {
        match started {
            Ok(running) => std::panic::AssertUnwindSafe(running)
                .catch_unwind()
                .await
                .unwrap_or_else(panicked),
            Err(panic) => panicked(panic),
        }
    }
}

/// Awaits `dispatch`, telling the caller every `every` that the call still runs
/// (oslo's call monitor), until a heartbeat fails.
async fn with_heartbeats(
    dispatch: impl Future<Output = Result<Value>>,
    responder: &dyn Responder,
    every: Duration,
) -> Result<Value> {
    tokio::pin!(dispatch);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut beating = true;
    loop {
        tokio::select! {
            outcome = &mut dispatch => break outcome,
            _ = ticker.tick(), if beating => {
                if let Err(e) = responder.heartbeat().await {
                    tracing::warn!(error = %e, "call-monitor heartbeat failed; no more heartbeats");
                    beating = false;
                }
            }
        }
    }
}

fn log_failure(method: &str, error: &Error) {
    let quiet = match error {
        Error::Remote(f) => f.expected,
        Error::NoSuchMethod { .. } => method.ends_with("_ignore_errors"),
        _ => false,
    };
    if quiet {
        tracing::debug!(method, error = %error, "expected exception during message handling");
    } else {
        tracing::error!(method, error = %error, "exception during message handling");
    }
}
