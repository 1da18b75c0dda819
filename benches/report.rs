//! Rendering a finished report: JSON and text for an eight-GPU machine.
use criterion::{criterion_group, criterion_main, Criterion};
use gpuprobe::export::{Exporter, Json, Text};
use gpuprobe::report::Report;

/// An eight-GPU report, built by parsing a one-GPU report and cloning its device.
fn eight_gpu_report() -> Report {
    let one = include_str!("report-one-gpu.json");
    let mut report: Report =
        serde_json::from_str(one).expect("benches/report-one-gpu.json is a valid report");
    let device = report.devices[0].clone();
    report.devices = (0..8)
        .map(|i| {
            let mut d = device.clone();
            d.index = i;
            d
        })
        .collect();
    report
}

fn render(c: &mut Criterion) {
    let report = eight_gpu_report();
    c.bench_function("render_json_8_gpus", |b| b.iter(|| Json.render(&report)));
    c.bench_function("render_text_8_gpus", |b| {
        b.iter(|| Text { color: false }.render(&report));
    });
    let text = Json.render(&report);
    c.bench_function("parse_json_8_gpus", |b| {
        b.iter(|| serde_json::from_str::<Report>(&text));
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
