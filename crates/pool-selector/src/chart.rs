//! A small line chart as standalone SVG: no scripts, no external assets, readable offline and in an
//! `<img>`. Used for the backtest's realized termination rate over time.

use std::fmt::Write;

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

/// Escape text for an XML text node or attribute.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Render `lines` over `steps` x positions, with percentages on the y axis. `x_start` and `x_end` label
/// the two ends of the x axis.
pub fn percent_lines(title: &str, x_start: &str, x_end: &str, lines: &[Line]) -> String {
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
    let y_max = nice_ceiling(max.max(0.001) * 1.1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |i: usize| LEFT + plot_w * i as f64 / (steps - 1) as f64;
    let y = |v: f64| TOP + plot_h * (1.0 - v / y_max);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="chart-title" font-family="system-ui, sans-serif" font-size="12">"#
    );
    let _ = write!(
        s,
        r##"<title id="chart-title">{}</title><rect width="100%" height="100%" fill="#ffffff"/>"##,
        xml(title)
    );
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="22" font-size="15" font-weight="600" fill="#1a1a1a">{}</text>"##,
        xml(title)
    );
    for k in 0..=4 {
        let v = y_max * k as f64 / 4.0;
        let yy = y(v);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#d0d0d0"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#333">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            yy + 4.0,
            format_percent(v)
        );
    }
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="{:.1}" fill="#333">{}</text><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#333">{}</text>"##,
        HEIGHT - BOTTOM + 20.0,
        xml(x_start),
        LEFT + plot_w,
        HEIGHT - BOTTOM + 20.0,
        xml(x_end)
    );
    for (n, line) in lines.iter().enumerate() {
        let colour = COLOURS[n % COLOURS.len()];
        let mut path = String::new();
        let mut pen_down = false;
        for (i, v) in line.values.iter().enumerate() {
            match v {
                Some(v) => {
                    let _ = write!(
                        path,
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        x(i),
                        y(*v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let dash = if line.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        if !path.is_empty() {
            let _ = write!(
                s,
                r#"<path d="{}" fill="none" stroke="{colour}" stroke-width="2"{dash}><title>{}</title></path>"#,
                path.trim_end(),
                xml(&line.label)
            );
        }
        let ly = TOP + 18.0 * n as f64;
        let lx = WIDTH - RIGHT + 16.0;
        let last = line.values.iter().rev().flatten().next();
        let _ = write!(
            s,
            r##"<line x1="{lx}" x2="{:.1}" y1="{ly:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="3"{dash}/><text x="{:.1}" y="{:.1}" fill="#1a1a1a">{} {}</text>"##,
            lx + 22.0,
            lx + 28.0,
            ly + 4.0,
            xml(&line.label),
            last.map(|v| format_percent(*v)).unwrap_or_default()
        );
    }
    s.push_str("</svg>");
    s
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
