//! Renderings of a finished report. Each format is one exporter over the same
//! `Report`; none of them probes anything.
mod bench;
mod format;
mod json;
mod nvlink;
mod prometheus;
mod text;

pub use format::OutputFormat;
pub use json::Json;
pub use prometheus::Prometheus;
pub use text::Text;

use crate::report::Report;

/// Turns a report into the bytes of one output format.
pub trait Exporter {
    fn render(&self, report: &Report) -> String;
}

/// docs/report.schema.json as committed: what `gpuprobe schema` prints. The
/// binary carries the file, not the generator (`schema`), which would add
/// the schema code of every report type to it (about 75 KB); a test keeps
/// the file equal to what `schema` generates.
pub const PUBLISHED_SCHEMA: &str = include_str!("../../docs/report.schema.json");

/// The JSON Schema of the report, generated from the report types (what
/// docs/report.schema.json must hold: `cargo run -q -p gpuprobe-docs --
/// schema > docs/report.schema.json`).
#[must_use]
pub fn schema() -> String {
    let schema = schemars::schema_for!(Report);
    let mut out = serde_json::to_string_pretty(&schema).unwrap_or_default();
    out.push('\n');
    out
}
