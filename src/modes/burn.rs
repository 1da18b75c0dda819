//! `gpuprobe burn`'s plot: each GPU's throughput, SM clock and temperature
//! over the burn, in three panels sharing the time axis, so that a slowdown
//! and what came with it (a falling clock, a rising temperature) line up.
//! The burn itself is a stage of the probe (src/checks/burn.rs).
use crate::plot::{Panel, Plot, Scale, Series};
use crate::report::Report;

/// The burn's intervals as a plot: x is seconds since the burn started.
#[must_use]
pub fn chart(report: &Report) -> Plot {
    let burned: Vec<_> = report
        .devices
        .iter()
        .filter_map(|d| Some((d, d.burn.as_ref()?)))
        .collect();
    let name = |index: u32| format!("GPU {index}");
    let series = |pick: fn(&crate::report::BurnInterval) -> Option<f64>| {
        burned
            .iter()
            .map(|(d, b)| Series {
                name: name(d.index),
                points: b
                    .intervals
                    .iter()
                    .filter_map(|i| Some((i.at_ms / 1e3, pick(i)?)))
                    .collect(),
            })
            .collect::<Vec<_>>()
    };
    // Each GPU's maximum SM clock, for the clock panel.
    let clock_max = burned
        .iter()
        .filter_map(|(d, b)| {
            Some((
                format!("GPU {} max", d.index),
                f64::from(b.sm_clock_max_mhz?),
            ))
        })
        .collect();
    let size = burned.first().map_or(0, |(_, b)| b.m);
    Plot {
        title: format!("gpuprobe burn: {size}³ SGEMM under sustained load"),
        x_label: "seconds since the burn started".into(),
        x_scale: Scale::Linear,
        panels: vec![
            Panel {
                y_label: "GFLOP/s".into(),
                series: series(|i| Some(i.gflops)),
                reference_lines: Vec::new(),
            },
            Panel {
                y_label: "SM clock (MHz)".into(),
                series: series(|i| i.sm_clock_mhz.map(f64::from)),
                reference_lines: clock_max,
            },
            Panel {
                y_label: "temperature (°C)".into(),
                series: series(|i| i.temperature_celsius.map(f64::from)),
                reference_lines: Vec::new(),
            },
        ],
    }
}
