//! The report's figures, drawn by plotters' SVG backend into strings. Only layout lives here:
//! axes, lines, markers, bars and legends are plotters'. Every figure gets a `<title>` and an
//! `aria-label` (its text alternative) and scales with the page.

use plotters::prelude::*;
use plotters::style::text_anchor;

/// Colour-blind-safe palette (Okabe & Ito): blue, orange, green, vermillion, purple, sky,
/// yellow.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
];

/// Figure width and height in pixels (the page scales them down on narrow screens).
const SIZE: (u32, u32) = (560, 380);

/// One line of a line chart.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points in data units.
    pub points: Vec<(f64, f64)>,
    /// Palette index.
    pub color: usize,
    /// Drawn as markers too.
    pub markers: bool,
}

/// A line chart on fixed axis ranges (`..Default::default()` for no diagonal, error bars or
/// marks).
#[derive(Default)]
pub struct LineChart {
    /// Text alternative and `<title>`.
    pub alt: String,
    /// X axis label with units.
    pub x_label: String,
    /// Y axis label with units.
    pub y_label: String,
    /// X range.
    pub x: (f64, f64),
    /// Y range.
    pub y: (f64, f64),
    /// Lines.
    pub series: Vec<Series>,
    /// A dashed reference diagonal from (x.0, y.0) to (x.1, y.1).
    pub diagonal: bool,
    /// Vertical error bars `(x, low, mid, high)` in the first series' colour.
    pub error_bars: Vec<(f64, f64, f64, f64)>,
    /// Highlighted points with a label (e.g. the chosen threshold).
    pub marks: Vec<(f64, f64, String)>,
    /// Axis ticks as percentages.
    pub percent: (bool, bool),
}

fn pct(v: &f64) -> String {
    format!("{:.0}%", 100.0 * v)
}

fn num(v: &f64) -> String {
    crate::util::fmt_num((v * 1000.0).round() / 1000.0)
}

/// Give plotters' SVG a text alternative and make it scale with the page.
fn accessible(svg: String, alt: &str) -> String {
    let alt = super::esc(alt);
    match svg.find('>') {
        Some(i) if svg.starts_with("<svg") => format!(
            "{} role=\"img\" aria-label=\"{alt}\" preserveAspectRatio=\"xMidYMid meet\"><title>{alt}</title>{}",
            &svg[..i],
            &svg[i + 1..]
        ),
        _ => svg,
    }
}

/// Draw `chart` as SVG.
pub fn line_chart(chart: &LineChart) -> String {
    let mut svg = String::new();
    // drawing into a String cannot fail for I/O; a plotting error leaves a partial figure
    let _ = draw_lines(chart, &mut svg);
    accessible(svg, &chart.alt)
}

fn draw_lines<'a>(
    c: &LineChart,
    out: &'a mut String,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let root = SVGBackend::with_string(out, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut ch = ChartBuilder::on(&root)
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(56)
        .build_cartesian_2d(c.x.0..c.x.1, c.y.0..c.y.1)?;
    let (px, py) = c.percent;
    ch.configure_mesh()
        .x_desc(c.x_label.as_str())
        .y_desc(c.y_label.as_str())
        .max_light_lines(0)
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| if px { pct(v) } else { num(v) })
        .y_label_formatter(&|v| if py { pct(v) } else { num(v) })
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    if c.diagonal {
        ch.draw_series(DashedLineSeries::new(
            vec![(c.x.0, c.y.0), (c.x.1, c.y.1)],
            4,
            4,
            BLACK.mix(0.4).stroke_width(1),
        ))?;
    }
    for s in &c.series {
        let color = PALETTE[s.color % PALETTE.len()];
        let style = color.stroke_width(2);
        ch.draw_series(LineSeries::new(s.points.iter().copied(), style))?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        if s.markers {
            ch.draw_series(
                s.points
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
            )?;
        }
    }
    if let Some(first) = c.series.first() {
        let color = PALETTE[first.color % PALETTE.len()];
        ch.draw_series(c.error_bars.iter().map(|&(x, lo, mid, hi)| {
            ErrorBar::new_vertical(x, lo, mid, hi, color.stroke_width(1), 8)
        }))?;
    }
    for (x, y, label) in &c.marks {
        let red = PALETTE[3];
        ch.draw_series(std::iter::once(Circle::new(
            (*x, *y),
            6,
            red.stroke_width(2),
        )))?;
        ch.draw_series(std::iter::once(Text::new(
            label.clone(),
            (*x, *y),
            ("sans-serif", 13).into_font().color(&red),
        )))?;
    }
    if c.series.len() > 1 || c.diagonal {
        ch.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 13))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// Pixels for row labels left of a plot: about 7 per character of the longest (4 to 28).
fn label_area<'a>(labels: impl Iterator<Item = &'a str>) -> u32 {
    labels
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 28) as u32
        * 7
        + 10
}

/// Horizontal bars: `(label, value)` top to bottom, values in `unit`.
pub fn bar_chart(alt: &str, x_label: &str, bars: &[(String, f64)], percent: bool) -> String {
    let mut svg = String::new();
    let _ = draw_bars(alt, x_label, bars, percent, &mut svg);
    accessible(svg, alt)
}

fn draw_bars<'a>(
    _alt: &str,
    x_label: &str,
    bars: &[(String, f64)],
    percent: bool,
    out: &'a mut String,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let n = bars.len().max(1);
    let height = (60 + 26 * n as u32).max(160);
    let root = SVGBackend::with_string(out, (SIZE.0, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-9) * 1.08;
    let label_width = label_area(bars.iter().map(|b| b.0.as_str()));
    let mut ch = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(label_width)
        .build_cartesian_2d(0.0..max, (0..n).into_segmented())?;
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    ch.configure_mesh()
        .disable_y_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc(x_label)
        .x_labels(5)
        .y_labels(n)
        .x_label_formatter(&|v| if percent { pct(v) } else { num(v) })
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    ch.draw_series(bars.iter().enumerate().map(|(i, b)| {
        let mut r = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (b.1, SegmentValue::Exact(i + 1)),
            ],
            PALETTE[0].filled(),
        );
        r.set_margin(4, 4, 0, 0);
        r
    }))?;
    root.present()?;
    Ok(())
}

/// Grouped vertical bars: one group per `groups` label, one bar per series.
pub fn grouped_bars(
    alt: &str,
    y_label: &str,
    groups: &[String],
    series: &[(String, Vec<f64>)],
) -> String {
    let mut svg = String::new();
    let _ = draw_grouped(y_label, groups, series, &mut svg);
    accessible(svg, alt)
}

fn draw_grouped<'a>(
    y_label: &str,
    groups: &[String],
    series: &[(String, Vec<f64>)],
    out: &'a mut String,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let root = SVGBackend::with_string(out, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let max = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * (1.25 + 0.09 * series.len() as f64); // headroom for the legend
    let n = groups.len().max(1);
    let mut ch = ChartBuilder::on(&root)
        .margin(14)
        .x_label_area_size(42)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..n as f64, 0.0..max)?;
    let names = groups.to_vec();
    ch.configure_mesh()
        .disable_x_mesh()
        .max_light_lines(0)
        .y_desc(y_label)
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|v| {
            let i = (v - 0.5).round();
            if (v - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| num(v))
        .label_style(("sans-serif", 12))
        .axis_desc_style(("sans-serif", 14))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    let k = series.len().max(1) as f64;
    let width = 0.8 / k;
    for (si, (name, values)) in series.iter().enumerate() {
        let color = PALETTE[si % PALETTE.len()];
        ch.draw_series(values.iter().enumerate().map(|(g, &v)| {
            let x0 = g as f64 + 0.1 + si as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width * 0.9, v)], color.filled())
        }))?
        .label(name.as_str())
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    ch.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 12))
        .draw()?;
    root.present()?;
    Ok(())
}

/// One row of a [`beeswarm`]: label, the points' x values, and each point's colour position
/// (0 = low, 1 = high; empty: all grey).
pub struct SwarmRow {
    /// Row label.
    pub label: String,
    /// Points in data units.
    pub x: Vec<f64>,
    /// Colour position per point, or empty.
    pub shade: Vec<f64>,
}

/// A beeswarm: one row per label, top to bottom, each point at its x value, piled up where
/// points crowd, coloured from blue (low) to vermillion (high).
pub fn beeswarm(alt: &str, x_label: &str, rows: &[SwarmRow]) -> String {
    let mut svg = String::new();
    let _ = draw_swarm(x_label, rows, &mut svg);
    accessible(svg, alt)
}

/// Vertical offsets (in row heights, within ±0.4) that pile up the points of `x` falling in the
/// same one-of-`columns` slice of `[lo, hi]`.
fn pile(x: &[f64], lo: f64, hi: f64, columns: f64) -> Vec<f64> {
    let mut count: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    x.iter()
        .map(|&v| {
            let c = ((v - lo) / (hi - lo).max(1e-12) * columns).floor() as i64;
            let k = count.entry(c).or_insert(0);
            *k += 1;
            let side = if k.is_multiple_of(2) { 1.0 } else { -1.0 };
            (side * (*k / 2) as f64 * 0.05).clamp(-0.4, 0.4)
        })
        .collect()
}

fn draw_swarm<'a>(
    x_label: &str,
    rows: &[SwarmRow],
    out: &'a mut String,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let n = rows.len().max(1);
    let height = (70 + 40 * n as u32).max(180);
    let root = SVGBackend::with_string(out, (SIZE.0, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let all = rows.iter().flat_map(|r| r.x.iter().copied());
    let (lo, hi) = all.fold((0.0f64, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let pad = (hi - lo).max(1e-6) * 0.05;
    let (lo, hi) = (lo - pad, hi + pad);
    let label_width = label_area(rows.iter().map(|r| r.label.as_str()));
    // row i is drawn at y = n - 1 - i, so the first row is on top
    let mut ch = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(label_width)
        .build_cartesian_2d(lo..hi, -0.6..n as f64 - 0.4)?;
    ch.configure_mesh()
        .disable_y_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc(x_label)
        .x_labels(6)
        .y_labels(0)
        .x_label_formatter(&num)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .bold_line_style(BLACK.mix(0.08))
        .draw()?;
    // the row labels, right-aligned against the plot
    for (i, r) in rows.iter().enumerate() {
        let (px, py) = ch.backend_coord(&(lo, (n - 1 - i) as f64));
        let style = TextStyle::from(("sans-serif", 13).into_font()).pos(text_anchor::Pos::new(
            text_anchor::HPos::Right,
            text_anchor::VPos::Center,
        ));
        root.draw(&Text::new(r.label.clone(), (px - 6, py), style))?;
    }
    ch.draw_series(LineSeries::new(
        [(0.0, -0.6), (0.0, n as f64 - 0.4)],
        BLACK.mix(0.4),
    ))?;
    let (low, high) = (PALETTE[0], PALETTE[3]);
    let mix = |t: f64| {
        let c = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t.clamp(0.0, 1.0)) as u8;
        RGBColor(c(low.0, high.0), c(low.1, high.1), c(low.2, high.2))
    };
    for (i, r) in rows.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        let dy = pile(&r.x, lo, hi, 150.0);
        ch.draw_series(r.x.iter().zip(&dy).enumerate().map(|(k, (&x, &d))| {
            let color = r.shade.get(k).map_or(RGBColor(120, 120, 120), |&t| mix(t));
            Circle::new((x, y + d), 2, color.mix(0.8).filled())
        }))?;
    }
    root.present()?;
    Ok(())
}
