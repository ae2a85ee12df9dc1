//! The drivers' sections: [`DriverSection`], which a driver implements for the type of
//! its `[oslo_messaging_<driver>]` section, and [`Config::section`], which types such a
//! section from what the file wrote.
//!
//! Reading a section takes its options as written (and those of the old places of
//! its deprecated names), lays a transport URL's query over them if one is given,
//! applies the deprecated names, drops the removed options with a warning, notes the
//! ignored ones at debug level, refuses unknown options, types the values and finally
//! calls [`DriverSection::validate`].

use std::fmt;

use serde::de::DeserializeOwned;

use super::de::{Document, Entry, IniValue, Origin, RawValue, Section, SectionDeserializer};
use super::{Config, error};
use crate::{Error, Result, TransportUrl};

/// The type of a driver's section, owned by the driver's crate: its name, the
/// options (the struct's fields, with oslo's defaults from `Default`), their checks, and
/// the names oslo deprecated or removed.
///
/// The struct is deserialized with serde from the section as written: it must be a
/// plain struct with `#[serde(default)]` (an option not in the file keeps its
/// default), whose field names are the option names. Multi-valued options are not
/// supported in driver sections.
///
/// ```
/// use messaging_core::config::{DriverSection, Ignored, check_range};
/// use messaging_core::{Config, Result};
///
/// /// `[oslo_messaging_pigeon]`.
/// #[derive(Debug, Clone, serde::Deserialize)]
/// #[serde(default)]
/// #[non_exhaustive]
/// pub struct PigeonSection {
///     /// Birds per message (1 to 3). Default 1.
///     pub birds: u32,
///     /// Feather colour. Accepted and ignored.
///     pub colour: String,
/// }
///
/// impl Default for PigeonSection {
///     fn default() -> Self {
///         PigeonSection { birds: 1, colour: String::new() }
///     }
/// }
///
/// impl DriverSection for PigeonSection {
///     const SECTION: &'static str = "oslo_messaging_pigeon";
///     const REMOVED: &'static [&'static str] = &["pigeon_host"];
///     const IGNORED: &'static [Ignored] =
///         &[Ignored::new("colour", "pigeons do not care")];
///
///     fn validate(&self) -> Result<()> {
///         check_range(Self::SECTION, "birds", self.birds.into(), 1.0, 3.0)
///     }
/// }
///
/// let conf = Config::from_ini_str("[oslo_messaging_pigeon]\nbirds = 2\npigeon_host = x\n")?;
/// let pigeon: PigeonSection = conf.section()?;
/// assert_eq!(pigeon.birds, 2);
///
/// let typo = Config::from_ini_str("[oslo_messaging_pigeon]\nbirdz = 2\n")?;
/// let err = typo.section::<PigeonSection>().unwrap_err();
/// assert!(err.to_string().contains("unknown option [oslo_messaging_pigeon] birdz (line 2)"));
/// # Ok::<(), messaging_core::Error>(())
/// ```
pub trait DriverSection:
    DeserializeOwned + Default + fmt::Debug + Clone + Send + Sync + 'static
{
    /// The section's name as oslo.config normalises it (lowercase), e.g.
    /// `oslo_messaging_rabbit`.
    const SECTION: &'static str;

    /// Options still accepted under an old name, maybe in another section (the zmq
    /// options were read from `[DEFAULT]` once). The current name wins when both are
    /// set; using an old one logs a warning.
    const DEPRECATED: &'static [Deprecated] = &[];

    /// Options oslo.messaging once had in this section and has removed: ignored with a
    /// warning, as oslo.config does, so that an old but once valid file still loads.
    const REMOVED: &'static [&'static str] = &[];

    /// Options of this section (fields of the struct) that are read, typed and then
    /// not used, with the reason; setting one is noted at debug level. The README's
    /// configuration reference lists them.
    const IGNORED: &'static [Ignored] = &[];

    /// Options whose values never appear in error messages (the struct's `Debug` must
    /// hide them too).
    const SECRETS: &'static [&'static str] = &[];

    /// Checks oslo's `choices` and `min`/`max` limits (see [`check_choice`] and
    /// [`check_range`]). Combinations of options that only the driver refuses belong in
    /// the driver, not here: every registered driver's section is validated whatever
    /// the transport.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// A deprecated spelling of an option (oslo.config's `deprecated_name` and
/// `deprecated_group`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deprecated {
    /// The section the old name was read from.
    pub old_section: &'static str,
    /// The old name.
    pub old_name: &'static str,
    /// The option's current name, in the section that declares this.
    pub name: &'static str,
}

impl Deprecated {
    /// `[old_section] old_name` is the deprecated spelling of `name`.
    pub const fn new(
        old_section: &'static str,
        old_name: &'static str,
        name: &'static str,
    ) -> Self {
        Deprecated {
            old_section,
            old_name,
            name,
        }
    }
}

/// An option that is accepted, typed and ignored, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ignored {
    /// The option's name.
    pub name: &'static str,
    /// Why it has no effect.
    pub reason: &'static str,
}

impl Ignored {
    /// `name` is ignored because of `reason`.
    pub const fn new(name: &'static str, reason: &'static str) -> Self {
        Ignored { name, reason }
    }
}

/// Checks one of oslo's `choices`: `value` must be one of `choices`.
pub fn check_choice(section: &str, option: &str, value: &str, choices: &[&str]) -> Result<()> {
    if choices.contains(&value) {
        Ok(())
    } else {
        Err(error(format!(
            "invalid value for [{section}] {option}: expected one of {}, got {value:?}",
            choices.join(", ")
        )))
    }
}

/// Checks one of oslo's `min`/`max` limits: `value` must lie in `min..=max`.
pub fn check_range(section: &str, option: &str, value: f64, min: f64, max: f64) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(error(format!(
            "invalid value for [{section}] {option}: must be between {min} and {max}, got {value}"
        )))
    }
}

impl Config {
    /// The driver section `T` as this configuration sets it, typed and checked.
    ///
    /// Errors are [`Error::Config`] naming the section, the option and its line: an
    /// unknown option, a badly typed value (a secret's value is not shown), a value
    /// outside oslo's limits. Removed options and deprecated names are warned about
    /// once per process.
    pub fn section<T: DriverSection>(&self) -> Result<T> {
        self.read_section(None)
    }

    /// The driver section `T` with a transport URL's query parameters laid over it, as
    /// oslo's `ConfigOptsProxy` does: `rabbit://h/?rabbit_qos_prefetch_count=10`
    /// overrides `[oslo_messaging_rabbit] rabbit_qos_prefetch_count`. Each value is read
    /// with its option's own type; a parameter that is not an option of the section is
    /// an [`Error::InvalidUrl`] naming it, and so is a badly typed value.
    pub fn section_with_url<T: DriverSection>(&self, url: &TransportUrl) -> Result<T> {
        self.read_section(Some(url))
    }

    fn read_section<T: DriverSection>(&self, url: Option<&TransportUrl>) -> Result<T> {
        let (section, warnings) = self.load_section(url)?;
        for warning in &warnings {
            super::warn_once(warning);
        }
        Ok(section)
    }

    /// Reads `T` (see the [module documentation](self)), returning it with the
    /// warnings to give: removed options and deprecated names used. Errors name the
    /// file the configuration was read from, if any.
    pub(crate) fn load_section<T: DriverSection>(
        &self,
        url: Option<&TransportUrl>,
    ) -> Result<(T, Vec<String>)> {
        self.load_section_here(url).map_err(|e| match &self.file {
            Some(path) => super::in_file(path, e),
            None => e,
        })
    }

    fn load_section_here<T: DriverSection>(
        &self,
        url: Option<&TransportUrl>,
    ) -> Result<(T, Vec<String>)> {
        let raw = &self.raw.0;
        let mut doc: Document<RawValue> = Document::new();
        if let Some(section) = raw.section(T::SECTION) {
            doc.sections.push(section.clone());
        }
        for dep in T::DEPRECATED.iter().filter(|d| d.old_section != T::SECTION) {
            let old = raw
                .section(dep.old_section)
                .and_then(|s| s.entries.iter().find(|e| e.key == dep.old_name));
            if let Some(entry) = old {
                doc.section_mut(dep.old_section).entries.push(entry.clone());
            }
        }
        if let Some(url) = url {
            lay_over::<T>(&mut doc, url)?;
        }
        let mut warnings = doc.resolve_deprecated(T::SECTION, T::DEPRECATED);
        warnings.extend(doc.drop_removed(T::SECTION, T::REMOVED));
        let section = doc.remove_section(T::SECTION).unwrap_or_else(|| Section {
            name: T::SECTION.to_string(),
            entries: Vec::new(),
        });
        for entry in &section.entries {
            if let Some(ignored) = T::IGNORED.iter().find(|i| i.name == entry.key) {
                tracing::debug!(
                    "[{}] {} is accepted and ignored: {}",
                    T::SECTION,
                    ignored.name,
                    ignored.reason
                );
            }
        }
        let typed: T = typed(section)?;
        typed.validate()?;
        Ok((typed, warnings))
    }
}

/// Types a section, refusing options that are not fields of `T`.
fn typed<T: DriverSection>(section: Section<RawValue>) -> Result<T> {
    T::deserialize(SectionDeserializer {
        section,
        strict: true,
        secrets: T::SECRETS.to_vec(),
    })
    .map_err(|e| error(e.0))
}

/// Sets the URL's query parameters as options of `T`'s section in `doc`, replacing
/// what the file wrote. Each is typed alone first, so that a bad value is blamed on the
/// URL.
fn lay_over<T: DriverSection>(doc: &mut Document<RawValue>, url: &TransportUrl) -> Result<()> {
    let options = super::de::option_names::<T>();
    let invalid = |reason: String| Error::InvalidUrl {
        url: url.masked(),
        reason,
    };
    for (key, value) in &url.query {
        if !options.contains(&key.as_str()) {
            return Err(invalid(format!(
                "query parameter {key:?} is not a [{}] option",
                T::SECTION
            )));
        }
        let entry = Entry {
            key: key.clone(),
            origin: Origin {
                section: T::SECTION.to_string(),
                key: key.clone(),
                line: None,
            },
            value: RawValue::Ini(IniValue::single(value.clone())),
        };
        typed::<T>(Section {
            name: T::SECTION.to_string(),
            entries: vec![entry.clone()],
        })
        .map_err(|e| invalid(format!("query parameter {key:?}: {e}")))?;
        doc.set(T::SECTION, entry);
    }
    Ok(())
}
