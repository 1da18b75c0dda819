//! CUDA versions: the one type that parses, compares and prints them, for
//! the driver's own version (cuDriverGetVersion), `--require-driver` and
//! NVIDIA_REQUIRE_CUDA. A GPU's compute capability, written the same way,
//! is a type of the report's (`report::ComputeCapability`).
//!
//! Versions compare as (major, minor) pairs, never through the driver's
//! integer encoding, so an absurd requirement ("cuda>=9999999.0") is simply
//! one no driver meets, not an arithmetic overflow.
use std::fmt;
use std::str::FromStr;

/// A CUDA version, "major.minor".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CudaVersion {
    pub major: u32,
    pub minor: u32,
}

/// Text that is not a version like "12.2" or "12".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a version like 12.2")]
pub struct BadVersion(pub String);

impl CudaVersion {
    #[must_use]
    pub const fn new(major: u32, minor: u32) -> Self {
        CudaVersion { major, minor }
    }

    /// The version cuDriverGetVersion reports as `1000 * major + 10 * minor`
    /// (CUDA driver API, Version Management); `None` for a negative value,
    /// which no driver returns.
    #[must_use]
    pub fn from_driver(raw: i32) -> Option<Self> {
        let raw = u32::try_from(raw).ok()?;
        Some(CudaVersion::new(raw / 1000, raw % 1000 / 10))
    }
}

impl FromStr for CudaVersion {
    type Err = BadVersion;

    /// "12.2", or "12" for "12.0" (`units::parse_major_minor`).
    fn from_str(text: &str) -> Result<Self, BadVersion> {
        crate::units::parse_major_minor(text)
            .map(CudaVersion::from)
            .ok_or_else(|| BadVersion(text.to_string()))
    }
}

impl fmt::Display for CudaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl From<(u32, u32)> for CudaVersion {
    fn from((major, minor): (u32, u32)) -> Self {
        CudaVersion::new(major, minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Result<CudaVersion, BadVersion> {
        text.parse()
    }

    #[test]
    fn parses_major_and_major_minor() {
        assert_eq!(v("12.2"), Ok(CudaVersion::new(12, 2)));
        assert_eq!(v(" 12 "), Ok(CudaVersion::new(12, 0)));
        assert_eq!(v("12.10"), Ok(CudaVersion::new(12, 10)));
        for bad in ["", "12.", ".2", "9.x", "twelve", "+12", "12.-1", "1.2.3"] {
            assert!(v(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn absurd_versions_parse_or_are_refused_but_never_wrap() {
        assert_eq!(v("5000000.0"), Ok(CudaVersion::new(5_000_000, 0)));
        assert_eq!(v("4294967295.4294967295").unwrap().major, u32::MAX);
        assert!(v("4294967296.0").is_err());
        // No driver meets them; the comparison itself is total.
        let driver = CudaVersion::from_driver(i32::MAX).unwrap();
        assert!(driver < v("9999999.0").unwrap());
    }

    #[test]
    fn driver_encoding() {
        assert_eq!(
            CudaVersion::from_driver(12040),
            Some(CudaVersion::new(12, 4))
        );
        assert_eq!(
            CudaVersion::from_driver(11080),
            Some(CudaVersion::new(11, 8))
        );
        assert_eq!(CudaVersion::from_driver(13000).unwrap().to_string(), "13.0");
        assert_eq!(CudaVersion::from_driver(-1), None);
    }

    #[test]
    fn compares_numerically_not_as_text() {
        assert!(v("12.10").unwrap() > v("12.9").unwrap());
        assert!(v("9.0").unwrap() < v("12.0").unwrap());
        assert!(CudaVersion::from_driver(12040).unwrap() >= v("12.4").unwrap());
    }
}
