//! Line charts as SVG, for the commands that measure something over a range
//! (`bench`: GFLOP/s against the matrix size; `burn`: GFLOP/s, SM clock and
//! temperature over time).
//!
//! A plot is plain data (`Plot`: panels of named series and labelled
//! horizontal reference lines, stacked vertically over one shared x axis),
//! so a command builds it from its report and never touches the drawing
//! library. plotters draws it with its SVG backend only: text stays SVG
//! `<text>` elements, laid out by plotters' estimate instead of a font
//! rasterizer, which keeps the shipped binary small (docs/benchmarks.md,
//! "Binary size").
//!
//! Points that cannot be drawn (NaN, infinite, or x ≤ 0 on a log axis) are
//! left out rather than failing the plot: a measurement that did not happen
//! is a gap, not an error.
use plotters::prelude::*;

/// A figure: panels stacked top to bottom, sharing the x axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    pub title: String,
    pub x_label: String,
    pub x_scale: Scale,
    pub panels: Vec<Panel>,
}

/// How x values are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Equal steps per doubling; ticks at the powers of two in range.
    Log2,
}

/// One chart: its y axis, its lines, and horizontal reference lines (a
/// roofline, a limit) drawn dashed across the whole x range.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub y_label: String,
    pub series: Vec<Series>,
    pub reference_lines: Vec<(String, f64)>,
}

/// One named line, its points in x order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Why no SVG was made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PlotError {
    /// A plot needs at least one panel.
    #[error("the plot has no panels")]
    NoPanels,
    /// plotters refused to draw (an error of its SVG backend).
    #[error("drawing the plot failed: {0}")]
    Draw(String),
}

/// Width of the figure in pixels.
const WIDTH: u32 = 960;
/// Height of one panel in pixels (the title takes part of the first).
const PANEL_HEIGHT: u32 = 420;

/// Renders `plot` as an SVG document.
pub fn render_svg(plot: &Plot) -> Result<String, PlotError> {
    if plot.panels.is_empty() {
        return Err(PlotError::NoPanels);
    }
    let height = PANEL_HEIGHT * plot.panels.len() as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw)?;
        let root = root.titled(&plot.title, ("sans-serif", 22)).map_err(draw)?;
        let x = XAxis::of(plot);
        let areas = root.split_evenly((plot.panels.len(), 1));
        for (panel, area) in plot.panels.iter().zip(&areas) {
            draw_panel(area, panel, &x, &plot.x_label)?;
        }
        root.present().map_err(draw)?;
    }
    Ok(svg)
}

fn draw<E: std::fmt::Debug>(e: E) -> PlotError {
    PlotError::Draw(format!("{e:?}"))
}

/// The shared x axis: its range in plotted units (log2 of x on a log
/// axis), how many ticks it gets, and how a tick is labelled.
struct XAxis {
    scale: Scale,
    range: (f64, f64),
    ticks: usize,
}

impl XAxis {
    fn of(plot: &Plot) -> XAxis {
        let xs: Vec<f64> = plot
            .panels
            .iter()
            .flat_map(|p| &p.series)
            .flat_map(|s| &s.points)
            .filter_map(|&(x, y)| drawable(plot.x_scale, x, y).map(|(x, _)| x))
            .collect();
        let (lo, hi) = padded(bounds(xs.iter().copied()), 0.0);
        let ticks = match plot.x_scale {
            // One tick per power of two: plotters picks steps of 1, 2 or 5
            // times a power of ten, the most that fit the count asked for,
            // so asking for one per whole unit of the (log2) range gives
            // steps of exactly 1.
            Scale::Log2 => (hi.floor() - lo.ceil()).max(0.0) as usize + 1,
            Scale::Linear => 10,
        };
        XAxis {
            scale: plot.x_scale,
            range: (lo, hi),
            ticks,
        }
    }

    fn label(&self, v: f64) -> String {
        match self.scale {
            // Between powers of two (a range narrower than one doubling)
            // no label: 2^7.5 is no size anyone asked for.
            Scale::Log2 if (v - v.round()).abs() > 1e-9 => String::new(),
            Scale::Log2 => format!("{}", v.round().exp2()),
            Scale::Linear => format!("{v}"),
        }
    }
}

/// A y tick without trailing zeros: "70000", "0.25".
fn tick(v: f64) -> String {
    let text = format!("{v:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

/// A point as plotted, or `None` when it cannot be drawn.
fn drawable(scale: Scale, x: f64, y: f64) -> Option<(f64, f64)> {
    let x = match scale {
        Scale::Log2 if x > 0.0 => x.log2(),
        Scale::Log2 => return None,
        Scale::Linear => x,
    };
    (x.is_finite() && y.is_finite()).then_some((x, y))
}

/// The smallest and largest of `values`, or `None` when there are none.
fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// A range with room to draw: one unit around a single value, (0, 1) for
/// none, and `pad` of the span added on top.
fn padded(bounds: Option<(f64, f64)>, pad: f64) -> (f64, f64) {
    match bounds {
        None => (0.0, 1.0),
        Some((lo, hi)) if hi - lo <= f64::EPSILON * hi.abs().max(1.0) => (lo - 0.5, hi + 0.5),
        Some((lo, hi)) => (lo, hi + (hi - lo) * pad),
    }
}

/// Colours of the series in order, then again.
const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    x: &XAxis,
    x_label: &str,
) -> Result<(), PlotError> {
    let points: Vec<Vec<(f64, f64)>> = panel
        .series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter_map(|&(px, py)| drawable(x.scale, px, py))
                .collect()
        })
        .collect();
    let references: Vec<(&str, f64)> = panel
        .reference_lines
        .iter()
        .filter(|(_, y)| y.is_finite())
        .map(|(name, y)| (name.as_str(), *y))
        .collect();
    // From zero (a throughput, a clock or a temperature reads against
    // zero) to a little above the highest line.
    let ys = points
        .iter()
        .flatten()
        .map(|p| p.1)
        .chain(references.iter().map(|r| r.1))
        .chain([0.0]);
    let (y_lo, y_hi) = padded(bounds(ys), 0.08);
    let (x_lo, x_hi) = x.range;
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
        .map_err(draw)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(panel.y_label.as_str())
        .x_labels(x.ticks)
        .x_label_formatter(&|v| x.label(*v))
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(draw)?;
    let mut colours = COLOURS.iter().cycle();
    for (series, points) in panel.series.iter().zip(points) {
        let colour = *colours.next().unwrap_or(&BLACK);
        let style = colour.stroke_width(2);
        chart
            .draw_series(LineSeries::new(points.clone(), style))
            .map_err(draw)?
            .label(series.name.as_str())
            .legend(move |(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 18, ly)], style));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(draw)?;
    }
    for (name, y) in references {
        let colour = *colours.next().unwrap_or(&BLACK);
        let style = colour.stroke_width(2);
        chart
            .draw_series(DashedLineSeries::new([(x_lo, y), (x_hi, y)], 10, 6, style))
            .map_err(draw)?
            .label(name)
            .legend(move |(lx, ly)| PathElement::new(vec![(lx, ly), (lx + 18, ly)], style));
    }
    if !panel.series.is_empty() || !panel.reference_lines.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(draw)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, points: &[(f64, f64)]) -> Series {
        Series {
            name: name.into(),
            points: points.to_vec(),
        }
    }

    fn one_panel(series: Vec<Series>, reference_lines: Vec<(String, f64)>) -> Plot {
        Plot {
            title: "GEMM".into(),
            x_label: "N".into(),
            x_scale: Scale::Log2,
            panels: vec![Panel {
                y_label: "GFLOP/s".into(),
                series,
                reference_lines,
            }],
        }
    }

    /// Every `<text>` of the SVG, which must parse as XML.
    fn texts(svg: &str) -> Vec<String> {
        let doc = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        doc.descendants()
            .filter(|n| n.tag_name().name() == "text")
            .filter_map(|n| n.text().map(|t| t.trim().to_string()))
            .collect()
    }

    #[test]
    fn series_names_reference_labels_and_power_of_two_ticks_are_text() {
        let plot = one_panel(
            vec![
                series(
                    "fast",
                    &[(256.0, 900.0), (1024.0, 8000.0), (4096.0, 20000.0)],
                ),
                series("cublas & co <1>", &[(256.0, 1000.0), (4096.0, 40000.0)]),
            ],
            vec![("FP32 peak".into(), 66_900.0)],
        );
        let texts = texts(&render_svg(&plot).unwrap());
        for want in [
            "GEMM",
            "fast",
            "cublas & co <1>",
            "FP32 peak",
            "N",
            "GFLOP/s",
        ] {
            assert!(texts.iter().any(|t| t == want), "{want} in {texts:?}");
        }
        for tick in ["256", "512", "1024", "2048", "4096"] {
            assert!(texts.iter().any(|t| t == tick), "tick {tick} in {texts:?}");
        }
    }

    #[test]
    fn panels_stack_and_share_the_x_axis() {
        let mut plot = one_panel(vec![series("gflops", &[(0.0, 1.0), (60.0, 2.0)])], vec![]);
        plot.x_scale = Scale::Linear;
        plot.panels.push(Panel {
            y_label: "°C".into(),
            series: vec![series("temperature", &[(0.0, 40.0), (60.0, 71.0)])],
            reference_lines: vec![("slowdown".into(), 87.0)],
        });
        let svg = render_svg(&plot).unwrap();
        let texts = texts(&svg);
        for want in ["gflops", "temperature", "slowdown", "°C"] {
            assert!(texts.iter().any(|t| t == want), "{want} in {texts:?}");
        }
        assert!(svg.contains(&format!("height=\"{}\"", 2 * PANEL_HEIGHT)));
    }

    #[test]
    fn undrawable_data_is_left_out_without_panicking() {
        for points in [
            &[][..],
            &[(f64::NAN, 1.0), (2.0, f64::INFINITY)],
            &[(-4.0, 1.0), (0.0, 2.0)],
            &[(8.0, 5.0)],
            &[(8.0, f64::NEG_INFINITY), (16.0, 3.0), (f64::MAX, 1.0)],
        ] {
            for scale in [Scale::Log2, Scale::Linear] {
                let mut plot = one_panel(
                    vec![series("s", points)],
                    vec![("nan".into(), f64::NAN), ("peak".into(), 10.0)],
                );
                plot.x_scale = scale;
                let svg = render_svg(&plot).unwrap_or_else(|e| panic!("{points:?}: {e}"));
                texts(&svg);
            }
        }
        let empty = one_panel(Vec::new(), Vec::new());
        texts(&render_svg(&empty).unwrap());
        let mut none = empty;
        none.panels.clear();
        assert!(matches!(render_svg(&none), Err(PlotError::NoPanels)));
    }
}
