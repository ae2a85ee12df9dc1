//! Picks the endpoint and method for a request, as oslo's `RPCDispatcher` does.

use std::future::Future;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::endpoint::{Endpoint, HandlerFuture, Method};
use crate::serializer::Serializer;
use crate::wire::Request;
use crate::{Context, Error, RemoteError, Result, Version, version_is_compatible};

/// The name of the optional ping method.
pub const PING_METHOD: &str = "oslo_rpc_server_ping";

/// Which methods callers may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessPolicy {
    /// Everything except names starting with `_` (oslo's default).
    #[default]
    Default,
    /// Only methods registered with `exposed_method`.
    Explicit,
    /// Everything, private names included.
    Legacy,
}

impl AccessPolicy {
    fn allows(self, name: &str, exposed: bool) -> bool {
        match self {
            AccessPolicy::Default => !name.starts_with('_'),
            AccessPolicy::Explicit => exposed,
            AccessPolicy::Legacy => true,
        }
    }
}

/// Endpoints in order, an access policy and a serializer.
#[derive(Clone)]
pub struct Dispatcher {
    endpoints: Vec<(Endpoint, Version)>,
    policy: AccessPolicy,
    serializer: Arc<dyn Serializer>,
}

impl Dispatcher {
    /// Checks the endpoints (versions parse, no reserved method names) and builds the
    /// dispatcher; with `ping`, a last endpoint answers `oslo_rpc_server_ping` with "pong".
    pub fn new(
        endpoints: Vec<Endpoint>,
        policy: AccessPolicy,
        serializer: Arc<dyn Serializer>,
        ping: bool,
    ) -> Result<Self> {
        let mut checked = Vec::with_capacity(endpoints.len() + 1);
        for ep in endpoints {
            if ep.has_method("target") {
                return Err(Error::Config(
                    "an endpoint method may not be named \"target\": the name is reserved for the endpoint's target".into(),
                ));
            }
            let version = ep.target.parsed_version()?;
            checked.push((ep, version));
        }
        if ping {
            if checked.iter().any(|(ep, _)| ep.has_method(PING_METHOD)) {
                tracing::warn!(
                    "an endpoint already defines {PING_METHOD}; the ping endpoint is not added"
                );
            } else {
                let ping = Endpoint::new()
                    .method(PING_METHOD, |_ctx: Context, _: Map<String, Value>| async {
                        Ok::<_, RemoteError>("pong")
                    });
                checked.push((ping, Version::default()));
            }
        }
        Ok(Dispatcher {
            endpoints: checked,
            policy,
            serializer,
        })
    }

    /// Runs the request on the first endpoint whose namespace and version match and
    /// that has the method allowed by the policy. `NoSuchMethod` when an endpoint
    /// matched but none could run the method, else `UnsupportedVersion`; a method's
    /// failure is `Error::Remote`. The request is taken whole: its arguments and
    /// context move into the method rather than being copied.
    ///
    /// The method is found (and called) at once; the future returned only awaits it,
    /// so it stays small and borrows nothing.
    pub fn dispatch(&self, request: Request) -> impl Future<Output = Result<Value>> + Send + use<> {
        let started = self.start(request);
        async move {
            let (running, serialize) = started?;
            let result = running.await.map_err(|e| Error::Remote(Box::new(e)))?;
            match serialize.map(|s| *s) {
                Some((serializer, ctx)) => serializer.serialize_entity(&ctx, result),
                None => Ok(result),
            }
        }
    }

    /// The name of the endpoint that would run `request` (for the server metrics).
    pub fn endpoint_name(&self, request: &Request) -> Option<&str> {
        self.find(request).ok()?.0.name.as_deref()
    }

    /// The first endpoint whose namespace and version match and that has the method
    /// allowed by the policy, with the method.
    fn find(&self, request: &Request) -> Result<(&Endpoint, &Method)> {
        let version_text = request.version.as_deref().unwrap_or("1.0");
        let unsupported = || Error::UnsupportedVersion {
            version: version_text.to_string(),
            method: request.method.clone(),
        };
        let version: Version = version_text.parse().map_err(|_| unsupported())?;
        let namespace = request.namespace.as_deref();
        let mut compatible = false;
        for (ep, implemented) in &self.endpoints {
            if !ep.target.accepts_namespace(namespace)
                || !version_is_compatible(Some(implemented), Some(&version))
            {
                continue;
            }
            compatible = true;
            let Some(method) = ep.methods.get(&request.method) else {
                continue;
            };
            if self.policy.allows(&request.method, method.exposed) {
                return Ok((ep, method));
            }
        }
        if compatible {
            Err(Error::NoSuchMethod {
                method: request.method.clone(),
            })
        } else {
            Err(unsupported())
        }
    }

    /// Finds the method and calls it; with what serializes its result, unless the
    /// serializer changes nothing.
    fn start(&self, request: Request) -> Result<(HandlerFuture, ResultSerializer)> {
        let handler = self.find(&request)?.1.handler.clone();
        if self.serializer.is_identity() {
            // Nothing to convert: the context and arguments go to the method as they
            // came, and its result back.
            return Ok((handler(request.context, request.args), None));
        }
        let ctx = self.serializer.deserialize_context(request.context)?;
        let mut args = request.args;
        for value in args.values_mut() {
            *value = self
                .serializer
                .deserialize_entity(&ctx, std::mem::take(value))?;
        }
        let running = handler(ctx.clone(), args);
        Ok((running, Some(Box::new((self.serializer.clone(), ctx)))))
    }
}

/// The serializer of a method's result and the context it serializes in (boxed:
/// every request's task carries the option).
type ResultSerializer = Option<Box<(Arc<dyn Serializer>, Context)>>;

/// How an error of the server side travels to the caller: dispatcher errors get
/// oslo's classes in `oslo_messaging.rpc.dispatcher`, so Python callers recognise them.
pub fn failure_of(error: Error) -> RemoteError {
    const DISPATCHER: &str = "oslo_messaging.rpc.dispatcher";
    match error {
        Error::Remote(failure) => *failure,
        Error::NoSuchMethod { method } => RemoteError::new(
            "NoSuchMethod",
            DISPATCHER,
            format!("Endpoint does not support RPC method {method}"),
        ),
        Error::UnsupportedVersion { version, method } => RemoteError::new(
            "UnsupportedVersion",
            DISPATCHER,
            format!("Endpoint does not support RPC version {version}. Attempted method: {method}"),
        ),
        other => RemoteError::new(
            "MessagingException",
            "oslo_messaging.exceptions",
            other.to_string(),
        ),
    }
}
