//! Maps URL schemes to driver factories, and knows the drivers' configuration sections.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::DriverSection;
use crate::driver::DriverFactory;
use crate::{Config, Error, Result, Transport, TransportUrl};

/// URL schemes and the drivers that serve them. Registration is explicit: build one,
/// register the drivers you enable, then open transports by URL.
///
/// A driver also registers the type of its configuration section
/// ([`register_section`](Self::register_section)); creating a transport checks every
/// registered section of the configuration first ([`check_config`](Self::check_config)),
/// whichever driver the transport uses, as oslo.config refuses a mistake in any
/// messaging section of the file.
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
    /// Section name to the check of its type (see [`check_section`]).
    sections: BTreeMap<&'static str, SectionCheck>,
}

/// Reads one driver section of a configuration, returning the warnings to give.
type SectionCheck = fn(&Config) -> Result<Vec<String>>;

/// The [`SectionCheck`] of `T`.
fn check_section<T: DriverSection>(config: &Config) -> Result<Vec<String>> {
    config.load_section::<T>(None).map(|(_, warnings)| warnings)
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

    /// Registers the type of a driver's configuration section (`T::SECTION`), replacing
    /// any earlier one of that name, so that [`check_config`](Self::check_config) checks
    /// it. A driver's `register` function calls this along with
    /// [`register`](Self::register).
    pub fn register_section<T: DriverSection>(&mut self) -> &mut Self {
        self.sections.insert(T::SECTION, check_section::<T>);
        self
    }

    /// The names of the registered configuration sections, sorted.
    pub fn sections(&self) -> Vec<&'static str> {
        self.sections.keys().copied().collect()
    }

    /// Checks `config` as creating a transport does, for tools that validate a file up
    /// front: every registered driver's section is read (unknown options, types,
    /// oslo's limits), whichever driver a transport would use. Sections no registered
    /// driver claims are not checked.
    ///
    /// Returns the warnings the configuration deserves (removed options and deprecated
    /// names used), which are also logged once per process; the first error otherwise.
    ///
    /// ```
    /// use messaging_core::{Config, DriverRegistry};
    /// let registry = DriverRegistry::with_memory();
    /// let config = Config::from_ini_str("[oslo_messaging_metrics]\nmetrics_enabled = true\n")?;
    /// assert!(registry.check_config(&config)?.is_empty());
    /// # Ok::<(), messaging_core::Error>(())
    /// ```
    pub fn check_config(&self, config: &Config) -> Result<Vec<String>> {
        let mut warnings = Vec::new();
        for check in self.sections.values() {
            warnings.extend(check(config)?);
        }
        for warning in &warnings {
            crate::config::warn_once(warning);
        }
        Ok(warnings)
    }

    /// Opens a transport for `url`.
    pub async fn transport(&self, url: &str, config: &Config) -> Result<Transport> {
        let parsed = TransportUrl::parse(url)?;
        self.transport_for(parsed, config).await
    }

    /// Opens a transport for an already parsed URL, after checking `config` (see
    /// [`check_config`](Self::check_config)).
    pub async fn transport_for(&self, url: TransportUrl, config: &Config) -> Result<Transport> {
        self.check_config(config)?;
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
            .field("sections", &self.sections())
            .finish()
    }
}
