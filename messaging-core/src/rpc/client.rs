//! The RPC client: `call`, `cast`, fanout cast, with oslo's `prepare` overrides.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::driver::{Retry, SendOptions};
use crate::serializer::{NoOpSerializer, Serializer};
use crate::telemetry::rpc_metrics::{CallType, Invocation};
use crate::telemetry::{self, trace_context};
use crate::wire::Request;
use crate::{Context, Error, Result, Target, Transport, Version, version_is_compatible};

/// Calls and casts to a target. Cheap to clone; [`RpcClient::prepare`] gives a copy
/// whose settings can be overridden for some calls.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use messaging_core::{Config, Context, DriverRegistry, RpcClient, Target};
/// use std::time::Duration;
/// let transport = DriverRegistry::with_memory().transport("memory://", &Config::default()).await.unwrap();
/// let client = RpcClient::new(&transport, Target::topic("compute")).timeout(Duration::from_millis(50));
/// // Nobody listens on "compute": the call times out.
/// let err = client.call::<_, i64>(&Context::new(), "add", serde_json::json!({"a": 1})).await.unwrap_err();
/// assert!(matches!(err, messaging_core::Error::Timeout(_)));
/// # });
/// ```
#[derive(Clone)]
pub struct RpcClient {
    transport: Transport,
    target: Target,
    timeout: Option<Duration>,
    version_cap: Option<String>,
    serializer: Arc<dyn Serializer>,
    retry: Retry,
    call_monitor_timeout: Option<Duration>,
    at_least_once: bool,
}

impl RpcClient {
    /// A client for `target` (which needs a topic) over `transport`.
    pub fn new(transport: &Transport, target: Target) -> Self {
        RpcClient {
            transport: transport.clone(),
            target,
            timeout: None,
            version_cap: None,
            serializer: Arc::new(NoOpSerializer),
            retry: Retry::Forever,
            call_monitor_timeout: None,
            at_least_once: false,
        }
    }

    /// A copy to override settings on, like oslo's `prepare()`.
    pub fn prepare(&self) -> Self {
        self.clone()
    }

    /// The target messages go to.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Overrides the exchange.
    pub fn exchange(mut self, exchange: impl Into<String>) -> Self {
        self.target.exchange = Some(exchange.into());
        self
    }

    /// Overrides the topic.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.target.topic = Some(topic.into());
        self
    }

    /// Overrides the namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.target.namespace = Some(namespace.into());
        self
    }

    /// Overrides the version the messages need (checked when sending).
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.target.version = Some(version.into());
        self
    }

    /// Addresses one server.
    pub fn server(mut self, server: impl Into<String>) -> Self {
        self.target.server = Some(server.into());
        self
    }

    /// Casts to every server of the topic.
    pub fn fanout(mut self, fanout: bool) -> Self {
        self.target.fanout = fanout;
        self
    }

    /// The call timeout; unset means the transport's `rpc_response_timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The highest version this client may send (for rolling upgrades).
    pub fn version_cap(mut self, cap: impl Into<String>) -> Self {
        self.version_cap = Some(cap.into());
        self
    }

    /// Removes the version cap (oslo's `prepare(version_cap=None)`).
    pub fn without_version_cap(mut self) -> Self {
        self.version_cap = None;
        self
    }

    /// The serializer of arguments, results and context.
    pub fn serializer(mut self, serializer: Arc<dyn Serializer>) -> Self {
        self.serializer = serializer;
        self
    }

    /// Reconnect attempts before a send fails with `DeliveryFailure`.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// Fail a call when neither a reply nor a server heartbeat arrives within this
    /// time; the server then sends heartbeats while the method runs.
    pub fn call_monitor_timeout(mut self, timeout: Duration) -> Self {
        self.call_monitor_timeout = Some(timeout);
        self
    }

    /// Make sends mandatory: a message no queue takes fails with `Undeliverable` at
    /// once instead of being dropped (oslo's `TransportOptions(at_least_once=True)`).
    pub fn at_least_once(mut self, at_least_once: bool) -> Self {
        self.at_least_once = at_least_once;
        self
    }

    /// Whether a message of `version` (`None`: a message without a version) may be
    /// sent under the cap. With no cap, anything may.
    pub fn can_send_version(&self, version: Option<&str>) -> Result<bool> {
        let Some(cap) = &self.version_cap else {
            return Ok(true);
        };
        let cap: Version = cap.parse()?;
        let requested = version.map(str::parse::<Version>).transpose()?;
        Ok(version_is_compatible(Some(&cap), requested.as_ref()))
    }

    /// Whether this client's own target version may be sent under the cap (oslo's
    /// `can_send_version()` without an argument).
    pub fn can_send_target_version(&self) -> Result<bool> {
        self.can_send_version(self.target.version.as_deref())
    }

    /// Calls `method` with keyword arguments `args` (anything serialising to a JSON
    /// object) and waits for its typed result.
    pub async fn call<A: Serialize, R: DeserializeOwned>(
        &self,
        ctx: &Context,
        method: &str,
        args: A,
    ) -> Result<R> {
        if self.target.fanout {
            return Err(Error::invalid_target(
                "a call cannot be fanout",
                &self.target,
            ));
        }
        let request = self.make_request(ctx, method, args)?;
        let options = SendOptions {
            timeout: Some(
                self.timeout
                    .unwrap_or_else(|| self.transport.rpc_response_timeout()),
            ),
            call_monitor_timeout: self.call_monitor_timeout,
            retry: self.retry,
            at_least_once: self.at_least_once,
        };
        let result = self.send(request, &options, CallType::Call).await?;
        let result = self.serializer.deserialize_entity(ctx, result)?;
        serde_json::from_value(result).map_err(|e| {
            Error::Serialization(format!(
                "result of {method} does not fit the expected type: {e}"
            ))
        })
    }

    /// Sends `method` without waiting for a result; returns once the transport has
    /// accepted the message. At most once, unordered. With `fanout`, every server of
    /// the topic receives it.
    pub async fn cast<A: Serialize>(&self, ctx: &Context, method: &str, args: A) -> Result<()> {
        let request = self.make_request(ctx, method, args)?;
        if self.target.fanout {
            self.transport.require(|c| c.fanout, "fanout")?;
        }
        let options = SendOptions {
            timeout: None,
            call_monitor_timeout: None,
            retry: self.retry,
            at_least_once: self.at_least_once,
        };
        self.send(request, &options, CallType::Cast).await.map(drop)
    }

    /// Hands the request to the driver, in a span with OpenTelemetry's fields, counted
    /// in oslo's RPC metric families, with the current trace carried on.
    async fn send(
        &self,
        mut request: Request,
        options: &SendOptions,
        call_type: CallType,
    ) -> Result<Value> {
        let span = tracing::info_span!(
            "rpc.send",
            otel.name =
                telemetry::rpc_span_name(request.namespace.as_deref(), &request.method, "send"),
            otel.kind = "producer",
            messaging.system = telemetry::messaging_system(self.transport.driver().name()),
            messaging.destination.name = self.target.topic.as_deref().unwrap_or(""),
            messaging.operation = call_type.as_str(),
            rpc.system = "oslo.messaging",
            rpc.method = request.method.as_str(),
            rpc.service = request.namespace.as_deref(),
            openstack.request_id = telemetry::request_id(request.context.as_map()),
            otel.status_code = tracing::field::Empty,
        );
        trace_context::propagate(&span, &mut request.context.0);
        let series = self.transport.rpc_series().client(
            &self.target,
            &request.method,
            call_type,
            self.transport.metrics_process_name(),
        );
        let _in_flight = (call_type == CallType::Call).then(|| series.in_flight());
        let invocation = Invocation::start(series, self.transport.oslo_metrics());
        let outcome = self
            .transport
            .driver()
            .send(&self.target, request, options)
            .instrument(span.clone())
            .await;
        if outcome.is_err() {
            span.record("otel.status_code", "error");
        }
        invocation.finish(&outcome);
        outcome
    }

    fn make_request<A: Serialize>(&self, ctx: &Context, method: &str, args: A) -> Result<Request> {
        if self.target.topic.as_deref().is_none_or(str::is_empty) {
            return Err(Error::invalid_target(
                "a topic is required to send",
                &self.target,
            ));
        }
        self.transport.require(|c| c.rpc, "RPC")?;
        if let Some(v) = &self.target.version {
            v.parse::<Version>()?;
        }
        if !self.can_send_target_version()? {
            return Err(Error::VersionCap {
                version: self.target.version.clone().unwrap_or_else(|| "None".into()),
                version_cap: self.version_cap.clone().unwrap_or_default(),
            });
        }
        let args = match serde_json::to_value(args)? {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => {
                return Err(Error::Serialization(format!(
                    "RPC arguments must be a keyword map (a JSON object), got {other}"
                )));
            }
        };
        let mut serialized = Map::with_capacity(args.len());
        for (k, v) in args {
            serialized.insert(k, self.serializer.serialize_entity(ctx, v)?);
        }
        let mut request = Request::new(method, serialized, self.serializer.serialize_context(ctx)?);
        request.namespace = self.target.namespace.clone();
        request.version = self.target.version.clone();
        Ok(request)
    }
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("target", &self.target)
            .field("timeout", &self.timeout)
            .field("version_cap", &self.version_cap)
            .field("retry", &self.retry)
            .field("call_monitor_timeout", &self.call_monitor_timeout)
            .field("at_least_once", &self.at_least_once)
            .finish_non_exhaustive()
    }
}
