//! Serde plumbing shared by the INI and TOML loaders.
//!
//! Both formats are first turned into a [`Document`]: sections (names normalised the
//! oslo.config way) holding entries, each entry remembering where it was written (for
//! error messages). Deprecated names are then resolved and removed options dropped, and
//! the derived `Deserialize` impls of the sections are driven by [`DocumentDeserializer`]
//! (the core's sections, at load time) or [`SectionDeserializer`] (a driver's section,
//! when the driver asks for it). The section structs are therefore the one place where
//! options are listed; the deserializers only learn the option names from the `fields`
//! serde hands to `deserialize_struct`.
//!
//! INI values are strings that become bool, integer, float, list or multi-valued
//! option on demand ([`IniValue`]); TOML values keep their native types. A document
//! keeps either kind as a [`RawValue`], since a TOML file's driver section can get
//! INI-typed values laid over it by a transport URL's query.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor,
};

use super::{Deprecated, MULTI_MARKER};

/// Error raised while turning a [`Document`] into a `Config`; the text names the
/// section and option, and never contains the value of a secret option.
#[derive(Debug)]
pub(crate) struct DeError(pub(crate) String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

/// Where an entry was written: its section and name in the source (which differ from
/// the entry's place in the document when a deprecated name was used), and the line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Origin {
    pub(crate) section: String,
    pub(crate) key: String,
    pub(crate) line: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.section, self.key)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

/// One option as written in a section.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry<T> {
    pub(crate) key: String,
    pub(crate) origin: Origin,
    pub(crate) value: T,
}

/// One section: a name and its entries, each key at most once.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Section<T> {
    pub(crate) name: String,
    pub(crate) entries: Vec<Entry<T>>,
}

/// A parsed configuration source, before typing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Document<T> {
    pub(crate) sections: Vec<Section<T>>,
}

/// oslo.config's group name normalisation: `DEFAULT` stays, anything else is lowercased.
pub(crate) fn normalize_section(name: &str) -> String {
    if name == "DEFAULT" {
        name.to_string()
    } else {
        name.to_lowercase()
    }
}

impl<T> Default for Document<T> {
    fn default() -> Self {
        Document::new()
    }
}

impl<T> Document<T> {
    /// An empty document.
    pub(crate) fn new() -> Self {
        Document {
            sections: Vec::new(),
        }
    }

    /// The section called `name` (already normalised), created empty if absent.
    pub(crate) fn section_mut(&mut self, name: &str) -> &mut Section<T> {
        let index = match self.sections.iter().position(|s| s.name == name) {
            Some(index) => index,
            None => {
                self.sections.push(Section {
                    name: name.to_string(),
                    entries: Vec::new(),
                });
                self.sections.len() - 1
            }
        };
        &mut self.sections[index]
    }

    /// The section called `name`, if the document has it.
    pub(crate) fn section(&self, name: &str) -> Option<&Section<T>> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Takes the section called `name` out of the document.
    pub(crate) fn remove_section(&mut self, name: &str) -> Option<Section<T>> {
        let index = self.sections.iter().position(|s| s.name == name)?;
        Some(self.sections.remove(index))
    }

    /// The same document with every value converted by `f`.
    pub(crate) fn map<U>(self, mut f: impl FnMut(T) -> U) -> Document<U> {
        Document {
            sections: self
                .sections
                .into_iter()
                .map(|s| Section {
                    name: s.name,
                    entries: s
                        .entries
                        .into_iter()
                        .map(|e| Entry {
                            key: e.key,
                            origin: e.origin,
                            value: f(e.value),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    fn has(&self, section: &str, key: &str) -> bool {
        self.section(section)
            .is_some_and(|s| s.entries.iter().any(|e| e.key == key))
    }

    fn take(&mut self, section: &str, key: &str) -> Option<Entry<T>> {
        let s = self.sections.iter_mut().find(|s| s.name == section)?;
        let index = s.entries.iter().position(|e| e.key == key)?;
        Some(s.entries.remove(index))
    }

    /// Sets `entry` in `section`, replacing an entry of the same key.
    pub(crate) fn set(&mut self, section: &str, entry: Entry<T>) {
        let _ = self.take(section, &entry.key);
        self.section_mut(section).entries.push(entry);
    }

    /// Applies the deprecated names of the options of `section`: a value given under
    /// an old name (and maybe old section) is used for the current option unless the
    /// current name is also set, which then wins (as in oslo.config, whatever the
    /// order in the file). Returns a warning for each old name found.
    pub(crate) fn resolve_deprecated(
        &mut self,
        section: &str,
        deprecated: &[Deprecated],
    ) -> Vec<String> {
        let mut warnings = Vec::new();
        for dep in deprecated {
            let Some(mut entry) = self.take(dep.old_section, dep.old_name) else {
                continue;
            };
            if self.has(section, dep.name) {
                warnings.push(format!(
                    "ignoring deprecated option [{}] {}: [{section}] {} is also set",
                    dep.old_section, dep.old_name, dep.name
                ));
                continue;
            }
            warnings.push(format!(
                "option [{}] {} is deprecated, use [{section}] {}",
                dep.old_section, dep.old_name, dep.name
            ));
            entry.key = dep.name.to_string();
            self.section_mut(section).entries.push(entry);
        }
        warnings
    }

    /// Drops the options of `section` that oslo.messaging once had and has removed
    /// since: oslo.config ignores them, so an old but once valid file must still load.
    /// Returns a warning for each one found.
    pub(crate) fn drop_removed(&mut self, section: &str, removed: &[&str]) -> Vec<String> {
        removed
            .iter()
            .filter(|name| self.take(section, name).is_some())
            .map(|name| format!("ignoring option [{section}] {name}: removed from oslo.messaging"))
            .collect()
    }
}

/// A value as the file wrote it: INI text typed on demand, or a native TOML value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawValue {
    /// From an INI file or a transport URL's query.
    Ini(IniValue),
    /// From a TOML file.
    Toml(toml::Value),
}

/// Forwards a `deserialize_*` call to the INI or TOML value.
macro_rules! raw_forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<Vis: Visitor<'de>>(
            self,
            $($arg: $ty,)*
            visitor: Vis,
        ) -> Result<Vis::Value, DeError> {
            match self {
                RawValue::Ini(v) => v.$method($($arg,)* visitor),
                RawValue::Toml(v) => v
                    .$method($($arg,)* visitor)
                    .map_err(|e| DeError(e.to_string())),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for RawValue {
    type Error = DeError;

    raw_forward! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }
}

/// The option names of a section struct: the `fields` its derived `Deserialize` hands
/// to `deserialize_struct` (a struct that is not a serde struct has none).
pub(crate) fn option_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Fields(&'static [&'static str]);

    impl<'de> Deserializer<'de> for &mut Fields {
        type Error = DeError;

        fn deserialize_any<Vis: Visitor<'de>>(self, _: Vis) -> Result<Vis::Value, DeError> {
            Err(DeError("not a struct".into()))
        }

        fn deserialize_struct<Vis: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: Vis,
        ) -> Result<Vis::Value, DeError> {
            self.0 = fields;
            Err(DeError("fields taken".into()))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields = Fields(&[]);
    // The error is expected: it stops deserialization once the names are known.
    let _ = T::deserialize(&mut fields);
    fields.0
}

/// Deserializes a whole [`Document`] as a struct whose fields are section names.
/// Sections that are not fields of that struct (a service's own `[database]`, ...) are
/// skipped; every section except `[DEFAULT]` refuses options it does not know. The
/// values of the `secrets` (section, option) never appear in errors.
pub(crate) struct DocumentDeserializer<T> {
    doc: Document<T>,
    secrets: &'static [(&'static str, &'static str)],
}

impl<T> DocumentDeserializer<T> {
    pub(crate) fn new(doc: Document<T>, secrets: &'static [(&'static str, &'static str)]) -> Self {
        DocumentDeserializer { doc, secrets }
    }
}

impl<'de, T> Deserializer<'de> for DocumentDeserializer<T>
where
    T: Deserializer<'de>,
    T::Error: fmt::Display,
{
    type Error = DeError;

    fn deserialize_any<Vis: Visitor<'de>>(self, visitor: Vis) -> Result<Vis::Value, DeError> {
        visitor.visit_map(DocumentMap {
            sections: self.doc.sections.into_iter(),
            pending: None,
            secrets: self.secrets,
        })
    }

    fn deserialize_struct<Vis: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: Vis,
    ) -> Result<Vis::Value, DeError> {
        let sections: Vec<_> = self
            .doc
            .sections
            .into_iter()
            .filter(|s| fields.contains(&s.name.as_str()))
            .collect();
        visitor.visit_map(DocumentMap {
            sections: sections.into_iter(),
            pending: None,
            secrets: self.secrets,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

struct DocumentMap<T> {
    sections: std::vec::IntoIter<Section<T>>,
    pending: Option<Section<T>>,
    secrets: &'static [(&'static str, &'static str)],
}

impl<'de, T> MapAccess<'de> for DocumentMap<T>
where
    T: Deserializer<'de>,
    T::Error: fmt::Display,
{
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(section) = self.sections.next() else {
            return Ok(None);
        };
        let key = seed.deserialize(section.name.clone().into_deserializer())?;
        self.pending = Some(section);
        Ok(Some(key))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, DeError> {
        let section = self
            .pending
            .take()
            .ok_or_else(|| DeError("section value asked before its name".into()))?;
        let strict = section.name != "DEFAULT";
        let secrets = self
            .secrets
            .iter()
            .filter(|(s, _)| *s == section.name)
            .map(|(_, option)| *option)
            .collect();
        seed.deserialize(SectionDeserializer {
            section,
            strict,
            secrets,
        })
    }
}

/// The error for an option a messaging section does not have. A name with a space in
/// it is most likely `option value` with the `=` forgotten (and the value may be a
/// password), so only its first word is shown.
fn unknown_option(mut origin: Origin) -> DeError {
    let mut hint = "";
    if let Some((first, _)) = origin.key.split_once(char::is_whitespace) {
        origin.key = format!("{first}...");
        hint = "; option names have no spaces, is the '=' missing?";
    }
    DeError(format!("unknown option {origin}{hint}"))
}

/// Deserializes one section as a struct whose fields are option names; when `strict`,
/// an option that is not a field is an error. The values of the `secrets` options
/// never appear in errors.
pub(crate) struct SectionDeserializer<T> {
    pub(crate) section: Section<T>,
    pub(crate) strict: bool,
    pub(crate) secrets: Vec<&'static str>,
}

impl<'de, T> Deserializer<'de> for SectionDeserializer<T>
where
    T: Deserializer<'de>,
    T::Error: fmt::Display,
{
    type Error = DeError;

    fn deserialize_any<Vis: Visitor<'de>>(self, visitor: Vis) -> Result<Vis::Value, DeError> {
        visitor.visit_map(SectionMap {
            entries: self.section.entries.into_iter(),
            pending: None,
            secrets: self.secrets,
        })
    }

    fn deserialize_struct<Vis: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: Vis,
    ) -> Result<Vis::Value, DeError> {
        let mut known = Vec::with_capacity(self.section.entries.len());
        for entry in self.section.entries {
            if fields.contains(&entry.key.as_str()) {
                known.push(entry);
            } else if self.strict {
                return Err(unknown_option(entry.origin));
            }
        }
        visitor.visit_map(SectionMap {
            entries: known.into_iter(),
            pending: None,
            secrets: self.secrets,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

struct SectionMap<T> {
    entries: std::vec::IntoIter<Entry<T>>,
    pending: Option<Entry<T>>,
    secrets: Vec<&'static str>,
}

impl<'de, T> MapAccess<'de> for SectionMap<T>
where
    T: Deserializer<'de>,
    T::Error: fmt::Display,
{
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        let key = seed.deserialize(entry.key.clone().into_deserializer())?;
        self.pending = Some(entry);
        Ok(Some(key))
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, DeError> {
        let entry = self
            .pending
            .take()
            .ok_or_else(|| DeError("option value asked before its name".into()))?;
        let secret = self.secrets.contains(&entry.key.as_str());
        let origin = entry.origin;
        seed.deserialize(entry.value).map_err(|e| {
            if secret {
                DeError(format!(
                    "invalid value for secret option {origin} (value not shown)"
                ))
            } else {
                DeError(format!(
                    "invalid value for {origin}: {}",
                    e.to_string().trim_end()
                ))
            }
        })
    }
}

/// An INI option's value: every occurrence of the key in its section, in file order,
/// after `$var` substitution. Single-valued options use the last one (oslo.config's
/// "last wins"); the multi-valued ones (see [`multi_str`]) use them all.
///
/// `error` holds a substitution failure; it is reported only if the option is read, so
/// a broken `$var` in an option of another library does not stop the service.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IniValue {
    pub(crate) values: Vec<String>,
    pub(crate) error: Option<String>,
}

impl IniValue {
    pub(crate) fn single(value: String) -> Self {
        IniValue {
            values: vec![value],
            error: None,
        }
    }

    fn check(&self) -> Result<(), DeError> {
        match &self.error {
            Some(error) => Err(DeError(error.clone())),
            None => Ok(()),
        }
    }

    fn last(&self) -> &str {
        self.values.last().map(String::as_str).unwrap_or("")
    }

    fn items(&self) -> impl Iterator<Item = IniValue> + '_ {
        split_list(self.last()).into_iter().map(IniValue::single)
    }
}

/// oslo.config's `types.List` splitting: strip, drop trailing commas, split on `,`
/// and strip each item; an empty value is an empty list.
pub(crate) fn split_list(value: &str) -> Vec<String> {
    let s = value.trim().trim_end_matches(',');
    if s.is_empty() {
        return Vec::new();
    }
    s.split(',').map(|item| item.trim().to_string()).collect()
}

/// oslo.config's `types.Boolean`, case-insensitive.
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Some(true),
        "false" | "0" | "off" | "no" => Some(false),
        _ => None,
    }
}

fn describe(value: &str) -> String {
    if value.trim().is_empty() {
        "an empty value".to_string()
    } else {
        format!("{value:?}")
    }
}

/// What an integer type accepts, for error messages.
fn int_range(min: i128, max: u128) -> String {
    if max >= u128::from(u64::MAX) {
        if min == 0 {
            "a non-negative integer".to_string()
        } else {
            "an integer".to_string()
        }
    } else {
        format!("an integer from {min} to {max}")
    }
}

macro_rules! ini_int {
    ($($method:ident => $ty:ty, $visit:ident;)*) => {$(
        fn $method<Vis: Visitor<'de>>(self, visitor: Vis) -> Result<Vis::Value, DeError> {
            self.check()?;
            let s = self.last().trim();
            match s.parse::<$ty>() {
                Ok(v) => visitor.$visit(v),
                Err(_) => Err(DeError(format!(
                    "expected {}, got {}",
                    int_range(<$ty>::MIN as i128, <$ty>::MAX as u128),
                    describe(s)
                ))),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for IniValue {
    type Error = DeError;

    fn deserialize_any<Vis: Visitor<'de>>(self, visitor: Vis) -> Result<Vis::Value, DeError> {
        self.check()?;
        let last = self.values.into_iter().last().unwrap_or_default();
        visitor.visit_string(last)
    }

    fn deserialize_bool<Vis: Visitor<'de>>(self, visitor: Vis) -> Result<Vis::Value, DeError> {
        self.check()?;
        match parse_bool(self.last()) {
            Some(b) => visitor.visit_bool(b),
            None => Err(DeError(format!(
                "expected a boolean (true/false, yes/no, on/off, 1/0), got {}",
                describe(self.last())
            ))),
        }
    }

    ini_int! {
        deserialize_i8 => i8, visit_i8;
        deserialize_i16 => i16, visit_i16;
        deserialize_i32 => i32, visit_i32;
        deserialize_i64 => i64, visit_i64;
        deserialize_i128 => i128, visit_i128;
        deserialize_u8 => u8, visit_u8;
        deserialize_u16 => u16, visit_u16;
        deserialize_u32 => u32, visit_u32;
        deserialize_u64 => u64, visit_u64;
        deserialize_u128 => u128, visit_u128;
    }

    fn deserialize_f32<Vis: Visitor<'de>>(self, visitor: Vis) -> Result<Vis::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<Vis: Visitor<'de>>(self, visitor: Vis) -> Result<Vis::Value, DeError> {
        self.check()?;
        let s = self.last().trim();
        match s.parse::<f64>() {
            Ok(v) => visitor.visit_f64(v),
            Err(_) => Err(DeError(format!("expected a number, got {}", describe(s)))),
        }
    }

    fn deserialize_option<Vis: Visitor<'de>>(self, visitor: Vis) -> Result<Vis::Value, DeError> {
        self.check()?;
        if self.last().trim().is_empty() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_seq<Vis: Visitor<'de>>(self, visitor: Vis) -> Result<Vis::Value, DeError> {
        self.check()?;
        let items: Vec<IniValue> = self.items().collect();
        visitor.visit_seq(de::value::SeqDeserializer::new(items.into_iter()))
    }

    fn deserialize_newtype_struct<Vis: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: Vis,
    ) -> Result<Vis::Value, DeError> {
        self.check()?;
        if name == MULTI_MARKER {
            let items: Vec<IniValue> = self
                .values
                .iter()
                .flat_map(|v| split_list(v))
                .map(IniValue::single)
                .collect();
            visitor.visit_seq(de::value::SeqDeserializer::new(items.into_iter()))
        } else {
            visitor.visit_newtype_struct(self)
        }
    }

    fn deserialize_enum<Vis: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: Vis,
    ) -> Result<Vis::Value, DeError> {
        self.check()?;
        let last = self.values.into_iter().last().unwrap_or_default();
        visitor.visit_enum(last.trim().to_string().into_deserializer())
    }

    fn deserialize_unit<Vis: Visitor<'de>>(self, visitor: Vis) -> Result<Vis::Value, DeError> {
        self.check()?;
        visitor.visit_unit()
    }

    fn deserialize_ignored_any<Vis: Visitor<'de>>(
        self,
        visitor: Vis,
    ) -> Result<Vis::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit_struct tuple tuple_struct map struct
        identifier
    }
}

impl<'de> IntoDeserializer<'de, DeError> for IniValue {
    type Deserializer = IniValue;

    fn into_deserializer(self) -> IniValue {
        self
    }
}

/// `deserialize_with` helper for oslo's multi-valued string options (`MultiStrOpt`).
///
/// In INI every occurrence of the key counts, and each may also hold a comma
/// separated list; in TOML the value is an array of strings or a single
/// (comma separated) string.
pub(crate) fn multi_str<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    struct MultiVisitor;

    impl<'de> Visitor<'de> for MultiVisitor {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a list of strings")
        }

        fn visit_newtype_struct<D: Deserializer<'de>>(
            self,
            deserializer: D,
        ) -> Result<Vec<String>, D::Error> {
            deserializer.deserialize_any(MultiVisitor)
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<Vec<String>, E> {
            Ok(split_list(value))
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                out.push(item);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_newtype_struct(MULTI_MARKER, MultiVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_splitting_follows_oslo() {
        assert_eq!(split_list(" a , b,c,, "), vec!["a", "b", "c"]);
        assert_eq!(split_list("a,,b"), vec!["a", "", "b"]);
        assert!(split_list("  ").is_empty());
        assert_eq!(split_list("a,\n  b"), vec!["a", "b"]);
    }

    #[test]
    fn booleans_follow_oslo() {
        for t in ["true", "TRUE", "Yes", "on", "1"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["false", "No", "OFF", "0"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "2", "y", "maybe"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }
}
