//! The report's charts, drawn by plotters into SVG strings: the latency
//! percentile distribution on HdrHistogram's log 1/(1−p) axis, sync P95
//! second by second, and the rate sweep. No fonts are read: text is laid
//! out by estimate and drawn by the browser.

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;

use crate::hist::Hist;

/// Chart size in pixels.
const SIZE: (u32, u32) = (600, 330);
/// Room above the data for the legend, as a multiple of the highest value.
const HEADROOM: f64 = 1.45;
/// Guide line colours, one per guide, so the legend tells them apart.
const GUIDES: [RGBColor; 3] = [RGBColor(198, 40, 40), RGBColor(239, 108, 0), RGBColor(120, 120, 120)];
/// Axis and legend text.
const TEXT: (&str, u32) = ("sans-serif", 14);
/// The deepest percentile drawn: 99.999%.
const DEEPEST: f64 = 100_000.0;

/// Series colours: the reference first, always the same blue.
pub(crate) const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 88, 166),
    RGBColor(204, 80, 20),
    RGBColor(46, 125, 50),
    RGBColor(142, 36, 170),
    RGBColor(0, 131, 143),
    RGBColor(120, 120, 120),
];

/// One backend's line.
pub(crate) struct Series<'a, T> {
    pub(crate) name: &'a str,
    pub(crate) color: RGBColor,
    pub(crate) points: T,
}

type Result = std::result::Result<String, String>;

/// A drawn line: its name, colour and points.
type Line<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Every chart's margins and room for the axes' labels.
fn frame<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder.margin(12).margin_right(34).x_label_area_size(44).y_label_area_size(64);
    builder
}

/// The legend, top left, in every chart's style.
fn legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> std::result::Result<(), String>
where
    DB: DrawingBackend + 'a,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(TEXT)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 200, 200))
        .draw()
        .map_err(err)
}

/// The x axis of a percentile plot: `1/(1−p)` on a log scale, labelled as percentiles.
#[derive(Clone)]
struct PercentileAxis(plotters::coord::types::RangedCoordf64);

impl Ranged for PercentileAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.0.map(&value.max(1.0).log10(), limit)
    }

    fn key_points<H: KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        (0..=5).map(|e| 10f64.powi(e)).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        1.0..DEEPEST
    }
}

impl ValueFormatter<f64> for PercentileAxis {
    fn format_ext(&self, value: &f64) -> String {
        match value.round() as u64 {
            1 => "0%".into(),
            10 => "90%".into(),
            100 => "99%".into(),
            1_000 => "99.9%".into(),
            10_000 => "99.99%".into(),
            _ => "99.999%".into(),
        }
    }
}

/// The latency at each percentile, every backend overlaid.
pub(crate) fn percentiles(series: &[Series<'_, &Hist>], claim_ms: Option<f64>) -> Result {
    let lines: Vec<Line<'_>> = series
        .iter()
        .map(|s| {
            let h = s.points.inner();
            let mut points: Vec<(f64, f64)> = h
                .iter_quantiles(5)
                .map(|v| {
                    let q = v.quantile_iterated_to();
                    (
                        if q >= 1.0 { DEEPEST } else { (1.0 / (1.0 - q)).min(DEEPEST) },
                        v.value_iterated_to() as f64 / 1000.0,
                    )
                })
                .collect();
            points.dedup_by(|a, b| a.0 == b.0);
            (s.name, s.color, points)
        })
        .collect();
    let top = lines.iter().flat_map(|l| l.2.iter().map(|p| p.1)).fold(0.0f64, f64::max).max(0.1) * HEADROOM;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart =
            frame(&root).build_cartesian_2d(PercentileAxis((0.0..DEEPEST.log10()).into()), 0.0..top).map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("sync latency (ms)")
            .label_style(TEXT)
            .axis_desc_style(TEXT)
            .light_line_style(RGBColor(238, 238, 238))
            .draw()
            .map_err(err)?;
        if let Some(claim) = claim_ms.filter(|c| *c < top) {
            chart
                .draw_series(LineSeries::new([(1.0, claim), (DEEPEST, claim)], RED.stroke_width(1)))
                .map_err(err)?
                .label("Convex claim: P95 < 100 ms")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED));
        }
        for (name, color, points) in lines {
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        legend(&mut chart)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Lines over a numeric x axis (seconds, offered rate), with optional guide lines.
pub(crate) struct Lines<'a> {
    pub(crate) series: Vec<Series<'a, Vec<(f64, f64)>>>,
    pub(crate) x_desc: &'a str,
    pub(crate) y_desc: &'a str,
    /// Horizontal guides: (y, label).
    pub(crate) horizontal: Vec<(f64, String)>,
    /// Vertical guides: (x, label).
    pub(crate) vertical: Vec<(f64, String)>,
    /// A dotted y = x line (what was offered).
    pub(crate) diagonal: Option<&'a str>,
    /// Mark every point.
    pub(crate) points: bool,
}

/// Draws [`Lines`].
pub(crate) fn lines(spec: &Lines<'_>) -> Result {
    // A value that is not finite (a hand-edited result) would make the axis endless.
    if spec.series.iter().flat_map(|s| s.points.iter()).any(|p| !(p.0.is_finite() && p.1.is_finite()))
        || spec.horizontal.iter().chain(&spec.vertical).any(|(v, _)| !v.is_finite())
    {
        return Err("a value to draw is not a finite number".into());
    }
    let all = spec.series.iter().flat_map(|s| s.points.iter());
    let (mut x_max, mut y_max) = all.fold((0.0f64, 0.0f64), |(x, y), p| (x.max(p.0), y.max(p.1)));
    for (y, _) in &spec.horizontal {
        y_max = y_max.max(*y);
    }
    for (x, _) in &spec.vertical {
        x_max = x_max.max(*x);
    }
    let x_max = (x_max * 1.05).max(1.0);
    let y_max = (y_max * HEADROOM).max(0.1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = frame(&root).build_cartesian_2d(0.0..x_max, 0.0..y_max).map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(spec.x_desc)
            .y_desc(spec.y_desc)
            .label_style(TEXT)
            .axis_desc_style(TEXT)
            .light_line_style(RGBColor(238, 238, 238))
            .draw()
            .map_err(err)?;
        let mut guides = GUIDES.iter().copied().cycle();
        if let Some(label) = spec.diagonal {
            let top = x_max.min(y_max);
            chart
                .draw_series(DashedLineSeries::new([(0.0, 0.0), (top, top)], 4, 4, RGBColor(150, 150, 150).into()))
                .map_err(err)?
                .label(label)
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RGBColor(150, 150, 150)));
        }
        for (y, label) in &spec.horizontal {
            let guide = guides.next().expect("cycles");
            chart
                .draw_series(DashedLineSeries::new([(0.0, *y), (x_max, *y)], 6, 4, guide.stroke_width(1)))
                .map_err(err)?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], guide));
        }
        for (x, label) in &spec.vertical {
            let guide = guides.next().expect("cycles");
            chart
                .draw_series(DashedLineSeries::new([(*x, 0.0), (*x, y_max)], 6, 4, guide.stroke_width(1)))
                .map_err(err)?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], guide));
        }
        for (i, s) in spec.series.iter().enumerate() {
            let color = s.color;
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))
                .map_err(err)?
                .label(s.name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
            // A marker shape per series, so lines lying on each other stay told apart.
            if spec.points {
                let points = s.points.iter().copied();
                match i % 3 {
                    0 => chart.draw_series(points.map(|p| Circle::new(p, 4, color.stroke_width(2)))).map(drop),
                    1 => chart.draw_series(points.map(|p| TriangleMarker::new(p, 6, color.filled()))).map(drop),
                    _ => chart.draw_series(points.map(|p| Cross::new(p, 5, color.stroke_width(2)))).map(drop),
                }
                .map_err(err)?;
            }
        }
        legend(&mut chart)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}
