//! Endpoints: named methods with typed arguments, under a namespace and version.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Context, RemoteError, Target};

pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<Value, RemoteError>> + Send>>;
pub(crate) type Handler = Arc<dyn Fn(Context, Map<String, Value>) -> HandlerFuture + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Method {
    pub handler: Handler,
    pub exposed: bool,
}

/// The arguments of a method that takes none (any keyword arguments are ignored).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct NoArgs {}

/// A set of RPC methods implementing one interface version in one namespace.
///
/// ```
/// use messaging_core::{Context, Endpoint, RemoteError};
/// use serde::Deserialize;
/// #[derive(Deserialize)]
/// struct Add { a: i64, b: i64 }
/// let api = Endpoint::new()
///     .version("1.3")
///     .method("add", |_ctx: Context, Add { a, b }| async move { Ok::<_, RemoteError>(a + b) })
///     .method("fail", |_ctx: Context, _: serde_json::Value| async move {
///         Err::<(), _>(RemoteError::value_error("no"))
///     });
/// assert!(api.has_method("add"));
/// ```
#[derive(Clone, Default)]
pub struct Endpoint {
    pub(crate) target: Target,
    pub(crate) methods: HashMap<String, Method>,
    pub(crate) name: Option<String>,
}

impl Endpoint {
    /// An endpoint in the null namespace, version 1.0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.target.namespace = Some(namespace.into());
        self
    }

    /// Sets the implemented version (default 1.0); checked when the server starts.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.target.version = Some(version.into());
        self
    }

    /// Names the endpoint for the server metrics' `endpoint` label (Python's endpoint
    /// class name, such as `ComputeAPI`); unnamed endpoints are labelled `None`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Namespaces also accepted (the old names after a rename).
    pub fn legacy_namespaces<I, S>(mut self, namespaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.target.legacy_namespaces = namespaces.into_iter().map(Into::into).collect();
        self
    }

    /// The endpoint's target (namespace, version, legacy namespaces).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Whether a method of that name is registered.
    pub fn has_method(&self, name: &str) -> bool {
        self.methods.contains_key(name)
    }

    /// Registers a method. Its arguments are deserialized from the keyword map into
    /// `A`; its result `R` is serialized back; its error chooses the class and module
    /// the caller sees.
    pub fn method<F, A, Fut, R, E>(self, name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(Context, A) -> Fut + Send + Sync + 'static,
        A: DeserializeOwned + Send + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Serialize,
        E: Into<RemoteError>,
    {
        self.add(name.into(), handler, false)
    }

    /// Registers a method that [`AccessPolicy::Explicit`](crate::rpc::AccessPolicy)
    /// allows (oslo's `@expose`).
    pub fn exposed_method<F, A, Fut, R, E>(self, name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(Context, A) -> Fut + Send + Sync + 'static,
        A: DeserializeOwned + Send + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Serialize,
        E: Into<RemoteError>,
    {
        self.add(name.into(), handler, true)
    }

    fn add<F, A, Fut, R, E>(mut self, name: String, handler: F, exposed: bool) -> Self
    where
        F: Fn(Context, A) -> Fut + Send + Sync + 'static,
        A: DeserializeOwned + Send + 'static,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Serialize,
        E: Into<RemoteError>,
    {
        let handler = Arc::new(handler);
        let method_name = name.clone();
        let erased: Handler = Arc::new(move |ctx: Context, args: Map<String, Value>| {
            let args = serde_json::from_value::<A>(Value::Object(args)).map_err(|e| {
                RemoteError::type_error(format!("{method_name}() got invalid arguments: {e}"))
            });
            let fut = args.map(|args| handler(ctx, args));
            Box::pin(async move {
                let value = fut?.await.map_err(Into::into)?;
                serde_json::to_value(value).map_err(|e| {
                    RemoteError::type_error(format!("result is not JSON serializable: {e}"))
                })
            }) as HandlerFuture
        });
        self.methods.insert(
            name,
            Method {
                handler: erased,
                exposed,
            },
        );
        self
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.methods.keys().collect();
        names.sort();
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("target", &self.target)
            .field("methods", &names)
            .finish()
    }
}
