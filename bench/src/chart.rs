//! chart.svg: for the first placement, one column per payload; the top row
//! is calls/s, the bottom row p99 latency (both on log scales: the systems
//! differ by orders of magnitude), grouped by calls in flight with one bar
//! per system. Drawn with plotters' SVG backend (no fonts needed:
//! SVG text is laid out by the viewer).

use std::path::Path;

use plotters::prelude::*;

use crate::report::{Cell, Results, size_label};
use crate::systems::System;

/// The colour of each system's bars.
fn colour(system: System) -> RGBColor {
    match system {
        System::CourierProtobuf => RGBColor(0x1f, 0x77, 0xb4),
        System::CourierPostcard => RGBColor(0x6b, 0xae, 0xd6),
        System::Tonic => RGBColor(0xd6, 0x27, 0x28),
        System::TarpcJson => RGBColor(0xff, 0x7f, 0x0e),
        System::TarpcBincode => RGBColor(0xff, 0xbb, 0x78),
        System::RawRpc => RGBColor(0x98, 0xdf, 0x8a),
        System::RawTokio => RGBColor(0x2c, 0xa0, 0x2c),
        System::FloorStd => RGBColor(0x7f, 0x7f, 0x7f),
        System::CourierProtobufBaseline => RGBColor(0x94, 0x67, 0xbd),
        System::CourierPostcardBaseline => RGBColor(0xc5, 0xb0, 0xd5),
    }
}

/// Which figure a row of panels shows.
#[derive(Clone, Copy)]
enum Figure {
    CallsPerSec,
    P99,
}

impl Figure {
    fn of(self, cell: &Cell) -> Option<f64> {
        match self {
            Figure::CallsPerSec => cell.calls_per_sec,
            Figure::P99 => cell.p99_us,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Figure::CallsPerSec => "calls/s, log scale (higher is better)",
            Figure::P99 => "p99 latency µs, log scale (lower is better)",
        }
    }
}

fn failed<E: std::fmt::Debug>(e: E) -> String {
    format!("chart: {e:?}")
}

/// Draws the chart of `results` into `path`.
pub fn draw(results: &Results, path: &Path) -> Result<(), String> {
    let Some(placement) = results.placements.first() else {
        return Err("chart: no placement".to_owned());
    };
    let payloads = &placement.payloads;
    let columns = payloads.len().max(1);
    let width = (420 * columns as u32).max(1260);
    let root = SVGBackend::new(path, (width, 780)).into_drawing_area();
    root.fill(&WHITE).map_err(failed)?;
    let (title, body) = root.split_vertically(36);
    title
        .draw(&Text::new(
            format!(
                "Unary echo, {} ({}, {})",
                placement.description, results.machine.started, results.config.mode
            ),
            (10, 10),
            ("sans-serif", 15).into_font(),
        ))
        .map_err(failed)?;
    let (panels, legend) = body.split_vertically(780 - 36 - 60);
    let panels = panels.split_evenly((2, columns));
    let systems: Vec<System> = results
        .config
        .systems
        .iter()
        .copied()
        .filter(|s| {
            results
                .cells
                .iter()
                .any(|c| c.system == *s && c.ok_runs > 0)
        })
        .collect();
    let concurrency = &results.config.concurrency;
    for (row, figure) in [Figure::CallsPerSec, Figure::P99].into_iter().enumerate() {
        for (col, &payload) in payloads.iter().enumerate() {
            let area = &panels[row * columns + col];
            let cell = |s: System, c: usize| {
                results.cells.iter().find(|x| {
                    x.placement == placement.name
                        && x.system == s
                        && x.payload == payload
                        && x.concurrency == c
                })
            };
            let values: Vec<f64> = concurrency
                .iter()
                .flat_map(|&c| {
                    systems
                        .iter()
                        .filter_map(move |&s| cell(s, c).and_then(|x| figure.of(x)))
                })
                .filter(|v| *v > 0.0)
                .collect();
            let top = values.iter().copied().fold(1.0_f64, f64::max) * 1.5;
            let bottom = values.iter().copied().fold(top, f64::min).max(1.0) / 2.0;
            let groups = concurrency.len() as f64;
            let mut chart = ChartBuilder::on(area)
                .caption(
                    format!("{}: {}", size_label(payload), figure.title()),
                    ("sans-serif", 14),
                )
                .margin(8)
                .x_label_area_size(28)
                .y_label_area_size(64)
                .build_cartesian_2d(-0.5..groups - 0.5, (bottom..top).log_scale())
                .map_err(failed)?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(concurrency.len())
                .x_label_formatter(&|x| {
                    let i = x.round();
                    if (x - i).abs() < 0.01 && i >= 0.0 && (i as usize) < concurrency.len() {
                        format!("{} in flight", concurrency[i as usize])
                    } else {
                        String::new()
                    }
                })
                .y_labels(6)
                .y_label_formatter(&|y| {
                    if *y >= 10_000.0 {
                        format!("{:.0}k", y / 1000.0)
                    } else {
                        format!("{y:.0}")
                    }
                })
                .draw()
                .map_err(failed)?;
            let width = 0.8 / systems.len().max(1) as f64;
            for (k, &system) in systems.iter().enumerate() {
                let bars: Vec<Rectangle<(f64, f64)>> = concurrency
                    .iter()
                    .enumerate()
                    .filter_map(|(g, &c)| {
                        let v = cell(system, c).and_then(|x| figure.of(x))?;
                        let x0 = g as f64 - 0.4 + k as f64 * width;
                        Some(Rectangle::new(
                            [(x0, 0.0), (x0 + width * 0.9, v)],
                            colour(system).filled(),
                        ))
                    })
                    .collect();
                chart.draw_series(bars).map_err(failed)?;
            }
        }
    }
    // The legend: 180 px per system, wrapping onto a second row.
    let (w, _) = legend.dim_in_pixel();
    let per_row = ((w.saturating_sub(40)) / 180).max(1) as usize;
    for (k, &system) in systems.iter().enumerate() {
        let x = 20 + (k % per_row) as i32 * 180;
        let y = 8 + (k / per_row) as i32 * 24;
        legend
            .draw(&Rectangle::new(
                [(x, y), (x + 14, y + 14)],
                colour(system).filled(),
            ))
            .map_err(failed)?;
        legend
            .draw(&Text::new(
                system.name(),
                (x + 20, y),
                ("sans-serif", 13).into_font(),
            ))
            .map_err(failed)?;
    }
    root.present().map_err(failed)
}
