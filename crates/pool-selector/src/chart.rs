//! A small line chart as standalone SVG: no scripts, no external assets, readable offline and in an
//! `<img>`. Used for the backtest's realized termination rate over time.
//!
//! The markup is written with maud, as the relay's page is: every text (the title, the axis labels,
//! the strategies' names) is escaped by default. SVG elements are closed explicitly (`{}`), as XML wants.

use std::fmt::Write;

use maud::{Markup, html};

/// One line: a label and one value per step (`None`: no value yet).
#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    pub values: Vec<Option<f64>>,
    pub dashed: bool,
}

/// Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
const COLOURS: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000",
];

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 380.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 180.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 48.0;

/// A coordinate as the chart writes it: one decimal.
fn c(v: f64) -> String {
    format!("{v:.1}")
}

/// Where values land: `steps` x positions across the plot, percentages up to `y_max` up it.
struct Plot {
    steps: usize,
    y_max: f64,
}

impl Plot {
    fn of(lines: &[Line]) -> Self {
        let steps = lines
            .iter()
            .map(|l| l.values.len())
            .max()
            .unwrap_or(0)
            .max(2);
        let max = lines
            .iter()
            .flat_map(|l| l.values.iter().flatten())
            .fold(0.0_f64, |a, &b| a.max(b));
        Self {
            steps,
            y_max: nice_ceiling(max.max(0.001) * 1.1),
        }
    }
    fn width() -> f64 {
        WIDTH - LEFT - RIGHT
    }
    fn x(&self, i: usize) -> f64 {
        LEFT + Self::width() * i as f64 / (self.steps - 1) as f64
    }
    fn y(&self, v: f64) -> f64 {
        TOP + (HEIGHT - TOP - BOTTOM) * (1.0 - v / self.y_max)
    }

    /// The line's path: a move where a run of values starts (after a gap), a line to each next value.
    fn path(&self, values: &[Option<f64>]) -> String {
        let mut path = String::new();
        let mut pen_down = false;
        for (i, v) in values.iter().enumerate() {
            match v {
                Some(v) => {
                    let _ = write!(
                        path,
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        self.x(i),
                        self.y(*v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        path.trim_end().to_owned()
    }
}

/// Render `lines` over `steps` x positions, with percentages on the y axis. `x_start` and `x_end` label
/// the two ends of the x axis.
pub fn percent_lines(title: &str, x_start: &str, x_end: &str, lines: &[Line]) -> String {
    let plot = Plot::of(lines);
    let right = LEFT + Plot::width();
    let x_label_y = c(HEIGHT - BOTTOM + 20.0);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width=(WIDTH)
            height=(HEIGHT) role="img" aria-labelledby="chart-title" font-family="system-ui, sans-serif"
            font-size="12" {
            title #chart-title { (title) }
            rect width="100%" height="100%" fill="#ffffff" {}
            text x=(LEFT) y="22" font-size="15" font-weight="600" fill="#1a1a1a" { (title) }
            @for k in 0..=4 {
                @let v = plot.y_max * k as f64 / 4.0;
                @let yy = plot.y(v);
                line x1=(LEFT) x2=(c(right)) y1=(c(yy)) y2=(c(yy)) stroke="#d0d0d0" {}
                text x=(c(LEFT - 6.0)) y=(c(yy + 4.0)) text-anchor="end" fill="#333" { (format_percent(v)) }
            }
            text x=(LEFT) y=(x_label_y) fill="#333" { (x_start) }
            text x=(c(right)) y=(x_label_y) text-anchor="end" fill="#333" { (x_end) }
            @for (n, line) in lines.iter().enumerate() {
                (render_line(&plot, n, line))
            }
        }
    }
    .into_string()
}

/// One line and its legend entry (its colour, dash, label and last value).
fn render_line(plot: &Plot, n: usize, line: &Line) -> Markup {
    let colour = COLOURS[n % COLOURS.len()];
    let dash = line.dashed.then_some("6 4");
    let path = plot.path(&line.values);
    let ly = TOP + 18.0 * n as f64;
    let lx = WIDTH - RIGHT + 16.0;
    let last = line.values.iter().rev().flatten().next();
    html! {
        @if !path.is_empty() {
            path d=(path) fill="none" stroke=(colour) stroke-width="2" stroke-dasharray=[dash] {
                title { (line.label) }
            }
        }
        line x1=(lx) x2=(c(lx + 22.0)) y1=(c(ly)) y2=(c(ly)) stroke=(colour) stroke-width="3"
            stroke-dasharray=[dash] {}
        text x=(c(lx + 28.0)) y=(c(ly + 4.0)) fill="#1a1a1a" {
            (line.label) " " (last.map(|v| format_percent(*v)).unwrap_or_default())
        }
    }
}

fn format_percent(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

/// The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least `v`.
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_line_with_its_label_and_escapes_text() {
        let svg = percent_lines(
            "Realized <rate>",
            "2026-11-08",
            "2026-11-22",
            &[
                Line {
                    label: "pooled".into(),
                    values: vec![None, Some(0.02), Some(0.03)],
                    dashed: false,
                },
                Line {
                    label: "best in hindsight".into(),
                    values: vec![Some(0.01); 3],
                    dashed: true,
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("Realized &lt;rate&gt;"));
        assert_eq!(svg.matches("<path").count(), 2);
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.contains("pooled 3.0%"));
        // The gap before the first value starts the line with a move, not a line from nowhere.
        assert!(svg.contains(r#"d="M"#));
        assert_eq!(nice_ceiling(0.033), 0.05);
        assert_eq!(nice_ceiling(0.2), 0.2);
    }
}
