//! The one place an output format becomes an exporter.
use std::io::IsTerminal;

use super::{Exporter, Json, Prometheus, Text};
use crate::report::Report;

/// How the report is printed on stdout. Each format is one exporter
/// (`crate::export`); adding a format is adding a variant and its exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Human text (colour on a terminal unless NO_COLOR is set).
    Text,
    /// The versioned JSON report (docs/report.md).
    Json,
    /// Prometheus text exposition format.
    Prometheus,
}

impl OutputFormat {
    /// Renders `report` for stdout in this format. Text is coloured only on
    /// a terminal and never when NO_COLOR is set (https://no-color.org).
    #[must_use]
    pub fn render(self, report: &Report) -> String {
        match self {
            OutputFormat::Text => {
                let color = std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
                Text { color }.render(report)
            }
            OutputFormat::Json => Json.render(report),
            OutputFormat::Prometheus => Prometheus.render(report),
        }
    }
}
