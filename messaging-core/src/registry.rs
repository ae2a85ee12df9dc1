//! Maps URL schemes to driver factories.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::driver::DriverFactory;
use crate::{Config, Error, Result, Transport, TransportUrl};

/// URL schemes and the drivers that serve them. Registration is explicit: build one,
/// register the drivers you enable, then open transports by URL.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use messaging_core::{Config, DriverRegistry};
/// let registry = DriverRegistry::with_memory();
/// let transport = registry.transport("memory://", &Config::default()).await.unwrap();
/// assert_eq!(transport.driver().name(), "memory");
/// let err = registry.transport("nope://", &Config::default()).await.unwrap_err();
/// assert!(err.to_string().contains("registered schemes: fake, memory"));
/// # });
/// ```
#[derive(Clone, Default)]
pub struct DriverRegistry {
    factories: BTreeMap<String, Arc<dyn DriverFactory>>,
}

impl DriverRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding the in-memory driver under `memory` and `fake`.
    pub fn with_memory() -> Self {
        let mut r = Self::new();
        let memory: Arc<dyn DriverFactory> = Arc::new(crate::memory::MemoryFactory);
        r.register("memory", memory.clone());
        r.register("fake", memory);
        r
    }

    /// Registers `factory` for `scheme` (the part of a URL scheme before any `+`),
    /// replacing any earlier one.
    pub fn register(
        &mut self,
        scheme: impl Into<String>,
        factory: Arc<dyn DriverFactory>,
    ) -> &mut Self {
        self.factories.insert(scheme.into(), factory);
        self
    }

    /// The registered schemes, sorted.
    pub fn schemes(&self) -> Vec<String> {
        self.factories.keys().cloned().collect()
    }

    /// Opens a transport for `url`.
    pub async fn transport(&self, url: &str, config: &Config) -> Result<Transport> {
        let parsed = TransportUrl::parse(url)?;
        self.transport_for(parsed, config).await
    }

    /// Opens a transport for an already parsed URL.
    pub async fn transport_for(&self, url: TransportUrl, config: &Config) -> Result<Transport> {
        let scheme = url.driver().to_string();
        let factory = self
            .factories
            .get(&scheme)
            .ok_or_else(|| Error::UnknownDriver {
                scheme: scheme.clone(),
                registered: self.schemes(),
            })?;
        tracing::debug!(url = %url.masked(), "opening transport");
        let driver = factory.connect(&url, config).await?;
        Ok(Transport::new(driver, url, Arc::new(config.clone())))
    }

    /// The RPC transport: `[DEFAULT] transport_url`.
    pub async fn rpc_transport(&self, config: &Config) -> Result<Transport> {
        self.transport(config.rpc_transport_url(), config).await
    }

    /// The notification transport: `[oslo_messaging_notifications] transport_url`,
    /// falling back to the RPC one (hybrid messaging).
    pub async fn notification_transport(&self, config: &Config) -> Result<Transport> {
        self.transport(config.notification_transport_url(), config)
            .await
    }
}

impl std::fmt::Debug for DriverRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DriverRegistry")
            .field("schemes", &self.schemes())
            .finish()
    }
}
