//! The usage page's charts, drawn with plotters' SVG backend into strings
//! that the page inlines (no scripts, no network).

use plotters::prelude::*;

const PALETTE: [RGBColor; 6] = [
    RGBColor(37, 99, 235),
    RGBColor(22, 163, 74),
    RGBColor(234, 88, 12),
    RGBColor(147, 51, 234),
    RGBColor(219, 39, 119),
    RGBColor(100, 116, 139),
];

pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
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
    out.replacen("<svg ", "<svg role=\"img\" preserveAspectRatio=\"xMinYMin meet\" style=\"max-width:100%;height:auto\" ", 1)
}

/// Horizontal bars, one per label (a gauge when given one or two bars).
pub fn horizontal_bars(bars: &[(String, f64)], max: f64, unit: &str) -> String {
    let height = 40 + 34 * bars.len() as u32;
    svg(720, height, |area| {
        let max = if max > 0.0 { max } else { 1.0 };
        let mut chart = ChartBuilder::on(&area)
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(150)
            .build_cartesian_2d(0.0..max, (0..bars.len()).into_segmented())
            .map_err(|e| e.to_string())?;
        let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(bars.len().max(1))
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .x_label_formatter(&|v| format!("{v:.0}{unit}"))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (v.min(max), SegmentValue::Exact(i + 1)),
                    ],
                    color(i).filled(),
                );
                bar.set_margin(4, 4, 0, 0);
                bar
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Stacked columns: one column per x label, one stack part per series.
pub fn stacked_columns(x_labels: &[String], series: &[(String, Vec<f64>)]) -> String {
    svg(720, 320, |area| {
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
            .y_label_area_size(50)
            .build_cartesian_2d(0..n, 0.0..max * 1.05)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.min(16))
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
        for (k, (name, values)) in series.iter().enumerate() {
            let rects: Vec<_> = (0..n)
                .map(|i| {
                    let v = values.get(i).copied().unwrap_or(0.0);
                    let r = Rectangle::new([(i, base[i]), (i + 1, base[i] + v)], color(k).filled());
                    base[i] += v;
                    r
                })
                .collect();
            chart
                .draw_series(rects)
                .map_err(|e| e.to_string())?
                .label(name.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], color(k).filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}
