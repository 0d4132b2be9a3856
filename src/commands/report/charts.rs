//! The usage page's charts, drawn with plotters' SVG backend into strings
//! that the page inlines (no scripts, no network).

use plotters::prelude::*;

const PALETTE: [RGBColor; 6] = [
    RGBColor(37, 99, 235),
    RGBColor(22, 163, 74),
    RGBColor(234, 88, 12),
    RGBColor(147, 51, 234),
    RGBColor(219, 39, 119),
    RGBColor(13, 148, 136),
];

pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The colour of a bar that is not one of the series (the sum of the
/// countries past the named ones): grey, set apart from them.
const APART: RGBColor = RGBColor(156, 163, 175);

/// The widths each chart is drawn at, and shown at: an SVG scaled down to
/// a phone's width would shrink its labels below legibility, so the page
/// holds a wide and a narrow drawing and shows the one that fits.
pub const WIDE: u32 = 640;
pub const NARROW: u32 = 340;
/// Axis labels, in pixels at 100% zoom (the page's small print is 12.8).
const LABEL_PX: u32 = 14;

/// `#rrggbb` of series `i`, for the page's HTML legends.
pub fn css_color(i: usize) -> String {
    let RGBColor(r, g, b) = color(i);
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn svg(
    width: u32,
    height: u32,
    draw: impl FnOnce(DrawingArea<SVGBackend, plotters::coord::Shift>) -> Result<(), String>,
) -> String {
    let mut out = String::new();
    {
        let area = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        if let Err(e) = area
            .fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|_| draw(area))
        {
            return format!("<p class=\"error\">chart not drawn: {e}</p>");
        }
    }
    out.replacen(
        "<svg ",
        &format!("<svg role=\"img\" style=\"width:{width}px;max-width:none;height:auto\" "),
        1,
    )
}

/// Horizontal bars, one per label (a gauge when given one or two bars);
/// the last `apart` bars are drawn grey, after a gap.
pub fn horizontal_bars(
    width: u32,
    bars: &[(String, f64)],
    max: f64,
    unit: &str,
    apart: usize,
) -> String {
    let height = 48 + 34 * bars.len() as u32;
    let first_apart = bars.len().saturating_sub(apart);
    svg(width, height, |area| {
        let max = if max > 0.0 { max } else { 1.0 };
        let mut chart = ChartBuilder::on(&area)
            .margin(8)
            .margin_right(24)
            .x_label_area_size(30)
            .y_label_area_size(width * 3 / 10)
            .build_cartesian_2d(0.0..max, (0..bars.len()).into_segmented())
            .map_err(|e| e.to_string())?;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        chart
            .configure_mesh()
            .label_style(("sans-serif", LABEL_PX))
            .disable_y_mesh()
            .y_labels(bars.len().max(1))
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_labels(if width < WIDE { 4 } else { 10 })
            .x_label_formatter(&|v| format!("{v:.0}{unit}"))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let fill = if i >= first_apart { APART } else { color(i) };
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (v.min(max), SegmentValue::Exact(i + 1)),
                    ],
                    fill.filled(),
                );
                // A wider gap above the bars set apart.
                let top = if i == first_apart && i > 0 { 10 } else { 4 };
                bar.set_margin(top, 4, 0, 0);
                bar
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Stacked columns: one column per x label, one stack part per series
/// (coloured as [`css_color`]; the page draws the legend beside the chart,
/// so that it never covers a column).
pub fn stacked_columns(width: u32, x_labels: &[String], series: &[(String, Vec<f64>)]) -> String {
    svg(width, 340, |area| {
        let n = x_labels.len().max(1);
        let max = (0..n)
            .map(|i| {
                series
                    .iter()
                    .map(|s| s.1.get(i).copied().unwrap_or(0.0))
                    .sum::<f64>()
            })
            .fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(&area)
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0..n, 0.0..max * 1.05)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .label_style(("sans-serif", LABEL_PX))
            .disable_x_mesh()
            .x_labels(n.min(if width < WIDE { 6 } else { 16 }))
            .x_label_formatter(&|i| {
                x_labels
                    .get(*i)
                    .map(|l| l.chars().skip(8).collect())
                    .unwrap_or_default()
            })
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(|e| e.to_string())?;
        let mut base = vec![0.0; n];
        for (k, (_, values)) in series.iter().enumerate() {
            let rects: Vec<_> = (0..n)
                .map(|i| {
                    let v = values.get(i).copied().unwrap_or(0.0);
                    let r = Rectangle::new([(i, base[i]), (i + 1, base[i] + v)], color(k).filled());
                    base[i] += v;
                    r
                })
                .collect();
            chart.draw_series(rects).map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}
