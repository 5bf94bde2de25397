//! Two SVG charts (plotters): zero-loss throughput by frame size, one line per DUT; and
//! the latency CDF at 50 % of each DUT's throughput for the smallest frame size.

use super::report::DutResult;
use plotters::prelude::*;
use std::path::Path;

fn colour(i: usize) -> RGBColor {
    const C: [RGBColor; 14] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
        RGBColor(0, 0, 0),
        RGBColor(90, 30, 160),
        RGBColor(200, 150, 0),
        RGBColor(0, 100, 100),
    ];
    C[i % C.len()]
}

/// Throughput (Mpps, log scale) by frame size, one series per DUT.
pub fn throughput(results: &[DutResult], path: &Path) -> Result<(), String> {
    let mut sizes: Vec<String> = Vec::new();
    for d in results {
        for r in &d.sizes {
            if !sizes.contains(&r.size.label()) {
                sizes.push(r.size.label());
            }
        }
    }
    let max = results
        .iter()
        .flat_map(|d| d.sizes.iter().filter_map(|r| r.tput_pps()))
        .fold(1e3, f64::max)
        / 1e6;
    let root = SVGBackend::new(path, (1000, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let n = sizes.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Zero-loss throughput by frame size (RFC 2544, same run)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(10)
        .build_cartesian_2d(-0.3f64..(n as f64 - 0.7), (0.001f64..max * 1.5).log_scale())
        .map_err(|e| e.to_string())?;
    let labels = sizes.clone();
    chart
        .configure_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                labels
                    .get(i as usize)
                    .map(|s| format!("{s} B"))
                    .unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("Mpps delivered with zero loss")
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, d) in results.iter().filter(|d| d.error.is_none()).enumerate() {
        let pts: Vec<(f64, f64)> = d
            .sizes
            .iter()
            .filter_map(|r| {
                let x = sizes.iter().position(|s| *s == r.size.label())? as f64;
                Some((x, r.tput_pps()? / 1e6))
            })
            .collect();
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(d.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// Latency CDF (µs, log scale) at 50 % of the throughput, first frame size of each DUT.
pub fn latency_cdf(results: &[DutResult], path: &Path) -> Result<(), String> {
    let mut series = Vec::new();
    let mut xmax = 10.0f64;
    for d in results.iter().filter(|d| d.error.is_none()) {
        let Some(r) = d.sizes.first() else { continue };
        let Some(o) = r.found.latency(50) else {
            continue;
        };
        if o.rx.latency.is_empty() {
            continue;
        }
        let pts: Vec<(f64, f64)> =
            o.rx.latency
                .iter_quantiles(2)
                .map(|v| {
                    (
                        (v.value_iterated_to() as f64 / 1e3).max(1.0),
                        v.quantile_iterated_to(),
                    )
                })
                .collect();
        xmax = xmax.max(o.rx.latency.max() as f64 / 1e3);
        series.push((format!("{} {} B", d.label, r.size.label()), pts));
    }
    let root = SVGBackend::new(path, (1000, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "One-way latency CDF at 50% of zero-loss throughput",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1.0f64..xmax * 1.2).log_scale(), 0.0f64..1.0)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("latency, µs")
        .y_desc("fraction of frames")
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, (label, pts)) in series.into_iter().enumerate() {
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
