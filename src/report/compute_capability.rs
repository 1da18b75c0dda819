//! A GPU's compute capability as the typed pair the program compares, and
//! its wire form, the string "8.0", which the report has always carried.
//!
//! The probe records the pair the driver gives; the peak, the requirements
//! and the diagnosis rules compare pairs, never text (as text "12.0" sorts
//! before "9.0").
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A compute capability, "major.minor" on the wire (CUDA C++ Programming
/// Guide, "Compute Capabilities": cuDeviceGetAttribute's
/// COMPUTE_CAPABILITY_MAJOR and _MINOR). Pairs compare by major, then minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComputeCapability {
    pub major: u32,
    pub minor: u32,
}

/// Text that is not a compute capability like "8.0" or "9".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a compute capability like 8.0")]
pub struct BadComputeCapability(pub String);

impl ComputeCapability {
    #[must_use]
    pub const fn new(major: u32, minor: u32) -> Self {
        ComputeCapability { major, minor }
    }

    /// `DeviceReport::compute_capability`'s reader: a string that is not a
    /// compute capability reads as unknown (null) rather than failing the
    /// whole report, as it did when the field was plain text that each
    /// consumer parsed; anything but a string or null is refused, as then.
    pub(super) fn read_or_unknown<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<ComputeCapability>, D::Error> {
        let text = Option::<String>::deserialize(deserializer)?;
        Ok(text.and_then(|t| t.parse().ok()))
    }
}

impl FromStr for ComputeCapability {
    type Err = BadComputeCapability;

    /// "8.0", or "9" for "9.0" (`units::parse_major_minor`, the grammar of
    /// CUDA versions too).
    fn from_str(text: &str) -> Result<Self, BadComputeCapability> {
        crate::units::parse_major_minor(text)
            .map(|(major, minor)| ComputeCapability::new(major, minor))
            .ok_or_else(|| BadComputeCapability(text.to_string()))
    }
}

impl fmt::Display for ComputeCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for ComputeCapability {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ComputeCapability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|_| de::Error::invalid_value(de::Unexpected::Str(&text), &"\"major.minor\""))
    }
}

/// On the wire a compute capability is a string, so its schema is a
/// string's, inlined where it is used: the published schema stays what it
/// was when the field was a `String`.
impl JsonSchema for ComputeCapability {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "ComputeCapability".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        String::json_schema(generator)
    }
}

/// For `DeviceReport::compute_capability`'s schema: its `#[serde(default)]`
/// only restores what serde does for any missing `Option` field (it reads
/// as null), which a custom reader otherwise loses; it adds nothing to the
/// contract, so the schema does not announce a default it never had.
pub(super) fn no_default(schema: &mut Schema) {
    schema.remove("default");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::DeviceReport;

    fn cc(major: u32, minor: u32) -> ComputeCapability {
        ComputeCapability::new(major, minor)
    }

    #[test]
    fn the_wire_form_is_the_string_it_always_was() {
        assert_eq!(serde_json::to_string(&cc(8, 0)).unwrap(), "\"8.0\"");
        assert_eq!(serde_json::to_string(&cc(12, 1)).unwrap(), "\"12.1\"");
        assert_eq!(
            serde_json::from_str::<ComputeCapability>("\"8.0\"").unwrap(),
            cc(8, 0)
        );
        assert_eq!("9".parse(), Ok(cc(9, 0)));
        assert_eq!(" 8.6 ".parse(), Ok(cc(8, 6)));
        for bad in ["", "8.", "x.0", "8.0.1", "+8.0", "-1.0", "4294967296.0"] {
            assert!(bad.parse::<ComputeCapability>().is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<ComputeCapability>("\"sm_80\"").is_err());
    }

    #[test]
    fn pairs_compare_as_numbers_not_text() {
        assert!(cc(12, 0) > cc(9, 0));
        assert!(cc(8, 10) > cc(8, 9));
        assert!(cc(9, 0) > cc(8, 9));
        assert!(cc(8, 6) >= cc(8, 6));
    }

    /// A device as a report holds it, with `compute_capability` set to
    /// `value` (or left out).
    fn device_with(value: Option<serde_json::Value>) -> serde_json::Value {
        let mut d = serde_json::to_value(DeviceReport::new(0)).unwrap();
        let fields = d.as_object_mut().unwrap();
        match value {
            Some(v) => fields.insert("compute_capability".into(), v),
            None => fields.remove("compute_capability"),
        };
        d
    }

    #[test]
    fn a_device_reads_and_writes_it_as_before() {
        let mut d = DeviceReport::new(0);
        d.compute_capability = Some(cc(9, 0));
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["compute_capability"], "9.0");
        let back: DeviceReport = serde_json::from_value(json).unwrap();
        assert_eq!(back.compute_capability, Some(cc(9, 0)));
        assert_eq!(
            serde_json::to_value(DeviceReport::new(0)).unwrap()["compute_capability"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn an_odd_value_reads_as_unknown_or_is_refused_as_before() {
        let read = |v| serde_json::from_value::<DeviceReport>(device_with(v));
        // Text that is no compute capability: unknown, the report still reads
        // (consumers parsed the text and found nothing).
        for text in ["banana", "", "8.x", "sm_90"] {
            assert_eq!(read(Some(text.into())).unwrap().compute_capability, None);
        }
        assert_eq!(
            read(Some(" 12 ".into())).unwrap().compute_capability,
            Some(cc(12, 0))
        );
        // Null and absent are unknown.
        assert_eq!(
            read(Some(serde_json::Value::Null))
                .unwrap()
                .compute_capability,
            None
        );
        assert_eq!(read(None).unwrap().compute_capability, None);
        // Not a string: refused, as a `String` field refused it.
        assert!(read(Some(serde_json::json!(8.0))).is_err());
        assert!(read(Some(serde_json::json!([8, 0]))).is_err());
    }
}
