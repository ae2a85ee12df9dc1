//! A connected transport: a driver plus the settings clients and servers share.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::driver::{Capabilities, Driver};
use crate::telemetry::OsloMetricsSink;
use crate::telemetry::rpc_metrics::SeriesCache;
use crate::{Config, Error, Result, TransportUrl};

/// A handle on a connected driver, cheap to clone. RPC clients and servers, notifiers
/// and listeners are built on one.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    driver: Arc<dyn Driver>,
    url: TransportUrl,
    config: Arc<Config>,
    /// Where the RPC metrics go besides the `metrics` facade, when
    /// `[oslo_messaging_metrics] metrics_enabled` is set.
    oslo_metrics: Option<OsloMetricsSink>,
    /// The RPC metric series its clients and servers update, built once per label set.
    rpc_series: SeriesCache,
}

impl Transport {
    /// Wraps a driver; `config` supplies `control_exchange`, `rpc_response_timeout` and
    /// the other defaults, and `[oslo_messaging_metrics]`, which starts the oslo.metrics
    /// exporter when `metrics_enabled` is set.
    pub fn new(driver: Arc<dyn Driver>, url: TransportUrl, config: Arc<Config>) -> Self {
        let oslo_metrics = OsloMetricsSink::from_config(&config.metrics);
        Transport {
            inner: Arc::new(Inner {
                driver,
                url,
                config,
                oslo_metrics,
                rpc_series: SeriesCache::default(),
            }),
        }
    }

    /// The driver.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.inner.driver
    }

    /// The URL this transport was made from.
    pub fn url(&self) -> &TransportUrl {
        &self.inner.url
    }

    /// The configuration it was made with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The exchange used when a target names none (`control_exchange`).
    pub fn default_exchange(&self) -> &str {
        &self.inner.config.default.control_exchange
    }

    /// The oslo.metrics exporter, when `metrics_enabled` is set.
    pub(crate) fn oslo_metrics(&self) -> Option<OsloMetricsSink> {
        self.inner.oslo_metrics.clone()
    }

    /// The series of the RPC metric families.
    pub(crate) fn rpc_series(&self) -> &SeriesCache {
        &self.inner.rpc_series
    }

    /// The `process` label of the RPC metrics (`metrics_process_name`).
    pub(crate) fn metrics_process_name(&self) -> &str {
        &self.inner.config.metrics.metrics_process_name
    }

    /// The default call timeout (`rpc_response_timeout`).
    pub fn rpc_response_timeout(&self) -> Duration {
        Duration::from_secs(self.inner.config.default.rpc_response_timeout)
    }

    /// What the driver can do.
    pub fn capabilities(&self) -> Capabilities {
        self.inner.driver.capabilities()
    }

    /// Fails with `Error::Unsupported` unless `has` holds for this driver.
    pub(crate) fn require(&self, has: impl Fn(&Capabilities) -> bool, feature: &str) -> Result<()> {
        if has(&self.capabilities()) {
            Ok(())
        } else {
            Err(Error::Unsupported {
                driver: self.inner.driver.name().to_string(),
                feature: feature.to_string(),
            })
        }
    }

    /// Closes the driver's connections.
    pub async fn cleanup(&self) {
        self.inner.driver.cleanup().await
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("driver", &self.inner.driver.name())
            .field("url", &self.inner.url)
            .finish()
    }
}
