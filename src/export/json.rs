//! The versioned JSON report (docs/report.md).
use super::Exporter;
use crate::report::Report;

pub struct Json;

impl Exporter for Json {
    fn render(&self, report: &Report) -> String {
        // Report holds only strings, numbers and plain containers: serialising
        // it cannot fail, and a NaN never reaches it (see verify::finite).
        let mut out = serde_json::to_string_pretty(report).unwrap_or_default();
        out.push('\n');
        out
    }
}
