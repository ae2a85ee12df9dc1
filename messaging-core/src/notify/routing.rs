//! The `routing` notification driver's table (oslo's `routing_notifier.yaml`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Priority;
use crate::{Error, Result};

/// Criteria of one driver in a routing group; every present criterion must match.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingRule {
    /// Shell-style patterns (fnmatch) on the event type.
    pub accepted_events: Option<Vec<String>>,
    /// Shell-style patterns on the lower-case priority.
    pub accepted_priorities: Option<Vec<String>>,
}

/// `{group: {driver: {accepted_events: [...], accepted_priorities: [...]}}}`: a driver
/// receives a notification when all of its criteria match in any group.
///
/// ```
/// use messaging_core::notify::{Priority, RoutingConfig};
/// let table = RoutingConfig::from_yaml("
/// group_1:
///   messagingv2: {accepted_events: ['compute.instance.*']}
///   log: {accepted_priorities: [error, critical]}
/// ").unwrap();
/// assert_eq!(table.drivers_for("compute.instance.create.end", Priority::Info), ["messagingv2"]);
/// assert_eq!(table.drivers_for("x", Priority::Error), ["log"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingConfig {
    groups: BTreeMap<String, BTreeMap<String, RoutingRule>>,
}

impl RoutingConfig {
    /// Parses the YAML table; an empty document routes nothing.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let groups: Option<BTreeMap<String, BTreeMap<String, Option<RoutingRule>>>> =
            serde_yaml_ng::from_str(text)
                .map_err(|e| Error::Config(format!("invalid routing notifier YAML: {e}").into()))?;
        let groups = groups
            .unwrap_or_default()
            .into_iter()
            .map(|(g, drivers)| {
                (
                    g,
                    drivers
                        .into_iter()
                        .map(|(d, r)| (d, r.unwrap_or_default()))
                        .collect(),
                )
            })
            .collect();
        let config = RoutingConfig { groups };
        for pattern in config.patterns() {
            glob::Pattern::new(pattern).map_err(|e| {
                Error::Config(format!("invalid routing pattern {pattern:?}: {e}").into())
            })?;
        }
        Ok(config)
    }

    /// Reads and parses the YAML file named by `routing_config`.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!("cannot read routing_config {}: {e}", path.display()).into())
        })?;
        Self::from_yaml(&text)
    }

    /// Group names, sorted.
    pub fn groups(&self) -> Vec<&str> {
        self.groups.keys().map(String::as_str).collect()
    }

    /// Every driver named in the table, sorted.
    pub fn used_drivers(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .groups
            .values()
            .flat_map(|g| g.keys().map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The drivers that take a notification, sorted and without repeats.
    pub fn drivers_for(&self, event_type: &str, priority: Priority) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .groups
            .values()
            .flat_map(|group| group.iter())
            .filter(|(_, rule)| {
                matches_any(rule.accepted_events.as_deref(), event_type, false)
                    && matches_any(rule.accepted_priorities.as_deref(), priority.as_str(), true)
            })
            .map(|(name, _)| name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    fn patterns(&self) -> impl Iterator<Item = &str> {
        self.groups.values().flat_map(|g| g.values()).flat_map(|r| {
            r.accepted_events
                .iter()
                .chain(r.accepted_priorities.iter())
                .flatten()
                .map(String::as_str)
        })
    }
}

/// An absent criterion passes; a present one needs a matching pattern. As oslo's
/// `fnmatch` on POSIX, matching is case-sensitive; priority patterns are lower-cased
/// first (oslo's `p.lower()`), event type patterns are not.
fn matches_any(patterns: Option<&[String]>, value: &str, lowercase_patterns: bool) -> bool {
    patterns.is_none_or(|ps| {
        ps.iter().any(|p| {
            let pattern = if lowercase_patterns {
                p.to_ascii_lowercase()
            } else {
                p.clone()
            };
            glob::Pattern::new(&pattern)
                .map(|pat| pat.matches(value))
                .unwrap_or(false)
        })
    })
}
