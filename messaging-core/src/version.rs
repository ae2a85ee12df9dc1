//! RPC interface versions and oslo's compatibility rule.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// An RPC interface version `major.minor[.rev]`.
///
/// ```
/// use messaging_core::Version;
/// let implemented: Version = "1.3".parse().unwrap();
/// assert!(implemented.is_compatible_with(&"1.2".parse().unwrap()));
/// assert!(!implemented.is_compatible_with(&"2.0".parse().unwrap()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version {
    /// Incompatible changes bump this.
    pub major: u32,
    /// Backward compatible additions bump this.
    pub minor: u32,
    /// Optional third part, 0 when absent.
    pub rev: u32,
    has_rev: bool,
}

impl Version {
    /// A `major.minor` version.
    pub const fn new(major: u32, minor: u32) -> Self {
        Version {
            major,
            minor,
            rev: 0,
            has_rev: false,
        }
    }

    /// A `major.minor.rev` version.
    pub const fn with_rev(major: u32, minor: u32, rev: u32) -> Self {
        Version {
            major,
            minor,
            rev,
            has_rev: true,
        }
    }

    /// oslo's `version_is_compatible(self, requested)`: an implementation at `self`
    /// can serve `requested` when the majors are equal, the requested minor is not
    /// higher, and with equal minors the requested revision is not higher.
    pub fn is_compatible_with(&self, requested: &Version) -> bool {
        if self.major != requested.major || requested.minor > self.minor {
            return false;
        }
        requested.minor != self.minor || requested.rev <= self.rev
    }
}

/// oslo's rule on optional versions: no implemented version serves anything, and an
/// absent requested version is never served by a set one.
pub fn version_is_compatible(implemented: Option<&Version>, requested: Option<&Version>) -> bool {
    match (implemented, requested) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(imp), Some(req)) => imp.is_compatible_with(req),
    }
}

impl Default for Version {
    fn default() -> Self {
        Version::new(1, 0)
    }
}

impl FromStr for Version {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || Error::InvalidVersion {
            version: s.to_string(),
        };
        let num = |p: &str| -> Result<u32, Error> {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        // Parsed for every request a server takes: no collecting.
        let mut parts = s.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(major), Some(minor), None, _) => Ok(Version::new(num(major)?, num(minor)?)),
            (Some(major), Some(minor), Some(rev), None) => {
                Ok(Version::with_rev(num(major)?, num(minor)?, num(rev)?))
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.has_rev {
            write!(f, "{}.{}.{}", self.major, self.minor, self.rev)
        } else {
            write!(f, "{}.{}", self.major, self.minor)
        }
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    // The cases of oslo.messaging's tests/test_utils.py VersionIsCompatibleTestCase.
    #[test]
    fn compatibility_rule() {
        assert!(v("1.0").is_compatible_with(&v("1.0")));
        assert!(!v("1.0").is_compatible_with(&v("2.0")));
        assert!(!v("2.0").is_compatible_with(&v("1.0")));
        assert!(v("1.1").is_compatible_with(&v("1.0")));
        assert!(!v("1.0").is_compatible_with(&v("1.1")));
        assert!(v("1.0.1").is_compatible_with(&v("1.0")));
        assert!(!v("1.0").is_compatible_with(&v("1.0.1")));
        assert!(v("1.1.0").is_compatible_with(&v("1.0.1")));
        assert!(v("1.0.2").is_compatible_with(&v("1.0.1")));
        assert!(!v("1.0.1").is_compatible_with(&v("1.0.2")));
    }

    #[test]
    fn optional_versions() {
        assert!(version_is_compatible(None, None));
        assert!(version_is_compatible(None, Some(&v("9.9"))));
        assert!(!version_is_compatible(Some(&v("1.0")), None));
    }

    #[test]
    fn parse_errors_name_the_text() {
        for bad in ["", "1", "a.b", "1.", "1.2.3.4", "1.-2", " 1.2"] {
            let err = bad.parse::<Version>().unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        assert_eq!(v("1.2.3").to_string(), "1.2.3");
        assert_eq!(v("7.5").to_string(), "7.5");
    }
}
