//! Rendering answers: tables for people, JSON and NDJSON for scripts. Pure functions of the answer
//! and a [`Style`], so every table is unit-tested without a terminal or a service.

pub use pool_core::view::{age_label, percent, window_label};
use std::fmt::Write as _;

use clap::ValueEnum;
use serde_json::Value;

use crate::model::{Choice, Launch, Pool, Ranking, Scale};

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people (colour on a terminal).
    Table,
    /// The service's answer, pretty-printed, every field.
    Json,
    /// One compact JSON record per line (one per pool, workload or launch).
    Ndjson,
}

/// How tables are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    /// ANSI colours: only on a terminal, and never with `NO_COLOR` set.
    pub color: bool,
    /// Characters of an interval bar.
    pub bar_width: usize,
}

impl Style {
    /// Colour when `is_terminal` and the `NO_COLOR` convention (any non-empty value) does not forbid it.
    pub fn detect(is_terminal: bool, no_color: Option<&str>) -> Self {
        Self {
            color: is_terminal && no_color.is_none_or(str::is_empty),
            bar_width: 20,
        }
    }

    /// No colour (files, pipes, tests).
    pub fn plain() -> Self {
        Self::detect(false, None)
    }

    fn paint(&self, code: Paint, text: &str) -> String {
        if self.color && code != Paint::None {
            format!("\x1b[{}m{text}\x1b[0m", code.sgr())
        } else {
            text.to_owned()
        }
    }
}

/// The few colours the tables use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    None,
    Bold,
    Dim,
    /// The pick, a completed launch.
    Good,
    /// A degraded pool, a running launch.
    Warn,
    /// A failed launch.
    Bad,
}

impl Paint {
    fn sgr(self) -> &'static str {
        match self {
            Paint::None => "0",
            Paint::Bold => "1",
            Paint::Dim => "2",
            Paint::Good => "1;32",
            Paint::Warn => "33",
            Paint::Bad => "31",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// Aligned columns: the header, then each row, two spaces apart, trailing spaces trimmed. Widths are
/// counted in characters before colour is applied, so colour never shifts a column.
fn table(header: &[(&str, Align)], rows: &[(Vec<String>, Paint)], style: &Style) -> String {
    let names: Vec<String> = header.iter().map(|(h, _)| h.to_string()).collect();
    let aligns: Vec<Align> = header.iter().map(|(_, a)| *a).collect();
    table_of(&names, &aligns, rows, style)
}

fn table_of(
    names: &[String],
    aligns: &[Align],
    rows: &[(Vec<String>, Paint)],
    style: &Style,
) -> String {
    let mut widths: Vec<usize> = names.iter().map(|h| h.chars().count()).collect();
    for (cells, _) in rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, ((cell, align), w)) in cells.iter().zip(aligns).zip(&widths).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = " ".repeat(w - cell.chars().count());
            match align {
                Align::Left => {
                    s.push_str(cell);
                    s.push_str(&pad);
                }
                Align::Right => {
                    s.push_str(&pad);
                    s.push_str(cell);
                }
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = String::new();
    out.push_str(&style.paint(Paint::Bold, &line(names)));
    out.push('\n');
    for (cells, paint) in rows {
        out.push_str(&style.paint(*paint, &line(cells)));
        out.push('\n');
    }
    out
}

/// An interval on a shared scale `0..=max`, `width` characters: blank, then `━` from `low` to `high`,
/// with `●` at `point`. Values outside the scale are clamped; a zero scale draws the point at 0.
pub fn interval_bar(low: f64, high: f64, point: f64, max: f64, width: usize) -> String {
    if width == 0 {
        return String::new();
    }
    let cell = |v: f64| -> usize {
        if max.is_nan() || max <= 0.0 || !v.is_finite() {
            return 0;
        }
        let x = (v / max).clamp(0.0, 1.0) * (width - 1) as f64;
        x.round() as usize
    };
    let (lo, hi, at) = (cell(low.min(high)), cell(high.max(low)), cell(point));
    (0..width)
        .map(|i| {
            if i == at {
                '●'
            } else if (lo..=hi).contains(&i) {
                '━'
            } else {
                ' '
            }
        })
        .collect::<String>()
        .trim_end()
        .to_owned()
}

/// The scale line above a column of bars: `0%` at the left, the maximum at the right.
fn scale_label(max: f64, width: usize) -> String {
    let right = percent(max);
    let gap = width.saturating_sub(2 + right.chars().count()).max(1);
    format!("0%{}{right}", " ".repeat(gap))
}

/// The end of the shared scale: the widest interval's upper end (never 0, so bars have room).
fn bar_max(pools: &[&Pool]) -> f64 {
    let max = pools
        .iter()
        .map(|p| p.ci_high.max(p.score).max(p.termination_rate))
        .fold(0.0_f64, f64::max);
    if max > 0.0 { max } else { 0.01 }
}

/// `2026-11-26T23:50:00.123Z` → `2026-11-26 23:50:00` (tables have no room for the rest).
fn short_time(ts: &str) -> String {
    let t = ts.replacen('T', " ", 1);
    t.split('.')
        .next()
        .unwrap_or(&t)
        .trim_end_matches('Z')
        .to_owned()
}

/// Rows of pools, best first, with the pick marked `*` (and in green on a terminal).
fn pool_rows(pools: &[&Pool], first_rank: usize, pick: Option<&str>, style: &Style) -> String {
    let max = bar_max(pools);
    // The bar column's header is its scale: 0% at the left end, the largest value at the right.
    let header = [
        ("", Align::Left),
        ("#", Align::Right),
        ("POOL", Align::Left),
        ("JOBS", Align::Right),
        ("SPOT", Align::Right),
        ("RATE", Align::Right),
        ("SCORE", Align::Right),
        ("INTERVAL", Align::Left),
        ("", Align::Left),
        ("LAST EVENT", Align::Left),
    ];
    let mut names: Vec<String> = header.iter().map(|(h, _)| h.to_string()).collect();
    names[8] = scale_label(max, style.bar_width);
    let aligns: Vec<Align> = header.iter().map(|(_, a)| *a).collect();
    let mut rows = vec![];
    for (i, p) in pools.iter().enumerate() {
        let picked = pick == Some(p.pool_id.as_str());
        let mut flags = String::new();
        if picked {
            flags.push('*');
        }
        if p.degraded {
            flags.push('!');
        }
        rows.push((
            vec![
                flags,
                (first_rank + i).to_string(),
                p.pool_id.clone(),
                p.jobs.to_string(),
                p.spot_terminations.to_string(),
                percent(p.termination_rate),
                percent(p.score),
                format!("{}–{}", percent(p.ci_low), percent(p.ci_high)),
                interval_bar(p.ci_low, p.ci_high, p.score, max, style.bar_width),
                short_time(&p.last_event_at),
            ],
            if picked {
                Paint::Good
            } else if p.degraded {
                Paint::Warn
            } else {
                Paint::None
            },
        ));
    }
    table_of(&names, &aligns, &rows, style)
}

/// `poolctl pools` as a table: a summary line, the pools best first (the first one is the pick), and a
/// legend.
pub fn ranking_table(r: &Ranking, style: &Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} of {} pools, strategy {}, window {}{}",
        r.pools.len(),
        r.total_pools,
        r.strategy,
        window_label(r.window_seconds),
        freshness(r.data_age_seconds, r.stale),
    );
    let pools: Vec<&Pool> = r.pools.iter().collect();
    let pick = r.pools.first().map(|p| p.pool_id.as_str());
    out.push_str(&pool_rows(&pools, 1, pick, style));
    out.push_str(&legend(&pools));
    out
}

/// `poolctl get-pool` as a table: the pick and its evidence, then the pick and its alternatives.
pub fn choice_table(c: &Choice, style: &Style) -> String {
    let p = &c.pool;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}",
        style.paint(Paint::Bold, "pick"),
        style.paint(Paint::Good, &p.pool_id)
    );
    let margin = c
        .margin
        .map(|m| format!(", {} ahead of the runner-up", percent(m)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  {} jobs, {} lost to spot terminations ({}), score {}, interval {}–{}",
        p.jobs,
        p.spot_terminations,
        percent(p.termination_rate),
        percent(p.score),
        percent(p.ci_low),
        percent(p.ci_high)
    );
    let _ = writeln!(
        out,
        "  best of {} candidates with probability {:.0}%{margin}",
        c.candidates,
        c.probability_best * 100.0
    );
    let _ = writeln!(
        out,
        "  strategy {}, window {}{}",
        c.strategy,
        window_label(c.window_seconds),
        freshness(c.data_age_seconds, c.stale)
    );
    if p.degraded {
        let _ = writeln!(
            out,
            "  {}",
            style.paint(
                Paint::Warn,
                "degraded: its last hours are significantly worse than the rest of its window"
            )
        );
    }
    if !c.alternatives.is_empty() {
        out.push('\n');
        let pools: Vec<&Pool> = std::iter::once(p).chain(&c.alternatives).collect();
        out.push_str(&pool_rows(&pools, 1, Some(&p.pool_id), style));
        out.push_str(&legend(&pools));
    }
    out
}

fn freshness(age: Option<u64>, stale: bool) -> String {
    match (age, stale) {
        (Some(a), true) => format!(", newest event {} ago (STALE)", age_label(a)),
        (Some(a), false) => format!(", newest event {} ago", age_label(a)),
        (None, _) => String::new(),
    }
}

fn legend(pools: &[&Pool]) -> String {
    let mut s = String::from("* the pick   ━ interval   ● score (lower is safer)");
    if pools.iter().any(|p| p.degraded) {
        s.push_str("   ! degraded lately");
    }
    s.push('\n');
    s
}

/// `poolctl scale`: one line per workload.
pub fn scale_table(reports: &[Scale], style: &Style) -> String {
    let header = [
        ("WORKLOAD", Align::Left),
        ("QUEUE", Align::Left),
        ("DESIRED", Align::Right),
        ("RECOMMENDED", Align::Right),
        ("DECIDED BY", Align::Left),
        ("READY", Align::Right),
        ("UNACKED", Align::Right),
        ("CONSUMERS", Align::Right),
        ("IN/S", Align::Right),
        ("OUT/S", Align::Right),
        ("OBSERVED", Align::Left),
    ];
    let rows: Vec<(Vec<String>, Paint)> = reports
        .iter()
        .map(|r| {
            let stat = |f: fn(&crate::model::QueueStats) -> String| {
                r.inputs.as_ref().map(f).unwrap_or_else(|| "-".into())
            };
            let decided = if r.fallback {
                format!("{} (fallback)", r.decided_by)
            } else {
                r.decided_by.clone()
            };
            (
                vec![
                    r.workload.clone(),
                    r.queue.clone(),
                    r.desired.to_string(),
                    r.recommendation.to_string(),
                    decided,
                    stat(|s| s.messages_ready.to_string()),
                    stat(|s| s.messages_unacknowledged.to_string()),
                    stat(|s| s.consumers.to_string()),
                    stat(|s| format!("{:.1}", s.publish_rate)),
                    stat(|s| format!("{:.1}", s.ack_rate)),
                    short_time(&r.observed_at),
                ],
                if r.fallback || !r.source_up {
                    Paint::Warn
                } else {
                    Paint::None
                },
            )
        })
        .collect();
    let mut out = table(&header, &rows, style);
    for r in reports.iter().filter(|r| r.error.is_some()) {
        let _ = writeln!(
            out,
            "{}: {}",
            r.workload,
            style.paint(Paint::Warn, r.error.as_deref().unwrap_or_default())
        );
    }
    out
}

fn state_paint(state: &str) -> Paint {
    match state {
        "COMPLETED" | "SUCCEEDED" => Paint::Good,
        "FAILED" => Paint::Bad,
        "CANCELLED" => Paint::Dim,
        _ => Paint::Warn,
    }
}

/// `poolctl launches`: one line per launch, newest first as the launcher lists them.
pub fn launches_table(launches: &[Launch], style: &Style) -> String {
    let header = [
        ("LAUNCH", Align::Left),
        ("APPLICATION", Align::Left),
        ("STATE", Align::Left),
        ("POOL", Align::Left),
        ("ATTEMPTS", Align::Right),
        ("CREATED", Align::Left),
        ("UPDATED", Align::Left),
    ];
    let rows: Vec<(Vec<String>, Paint)> = launches
        .iter()
        .map(|l| {
            let attempts = match l.max_attempts {
                Some(max) => format!("{}/{max}", l.attempts.len()),
                None => l.attempts.len().to_string(),
            };
            (
                vec![
                    l.launch_id.clone(),
                    l.application.clone(),
                    l.state.clone(),
                    l.pool_id.clone().unwrap_or_else(|| "-".into()),
                    attempts,
                    short_time(&l.created_at),
                    short_time(&l.updated_at),
                ],
                state_paint(&l.state),
            )
        })
        .collect();
    table(&header, &rows, style)
}

/// One launch in detail: its state, then one line per attempt (the pools it ran on, and why each
/// attempt ended).
pub fn launch_detail(l: &Launch, style: &Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "launch {}  {}  {}",
        l.launch_id,
        l.application,
        style.paint(state_paint(&l.state), &l.state)
    );
    if let Some(pool) = &l.pool_id {
        let _ = writeln!(out, "  pool {pool}");
    }
    if let Some(size) = &l.size {
        let _ = writeln!(out, "  size {size}");
    }
    let _ = writeln!(
        out,
        "  created {}, updated {}",
        short_time(&l.created_at),
        short_time(&l.updated_at)
    );
    if !l.attempts.is_empty() {
        out.push('\n');
        let header = [
            ("ATTEMPT", Align::Right),
            ("POOL", Align::Left),
            ("STATE", Align::Left),
            ("STATUS", Align::Left),
            ("REASON", Align::Left),
            ("SUBMITTED", Align::Left),
            ("FINISHED", Align::Left),
        ];
        let rows: Vec<(Vec<String>, Paint)> = l
            .attempts
            .iter()
            .map(|a| {
                (
                    vec![
                        a.attempt.to_string(),
                        a.pool_id.clone(),
                        a.state.clone(),
                        a.status.clone().unwrap_or_else(|| "-".into()),
                        a.reason
                            .clone()
                            .filter(|r| !r.is_empty())
                            .unwrap_or_else(|| "-".into()),
                        short_time(&a.submitted_at),
                        a.finished_at
                            .as_deref()
                            .map(short_time)
                            .unwrap_or_else(|| "-".into()),
                    ],
                    state_paint(a.status.as_deref().unwrap_or(&a.state)),
                )
            })
            .collect();
        out.push_str(&table(&header, &rows, style));
    }
    out
}

/// JSON output: the answer as the service gave it, pretty-printed.
pub fn json(value: &Value) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    s.push('\n');
    s
}

/// NDJSON output: each record compact on its own line.
pub fn ndjson<'a>(records: impl IntoIterator<Item = &'a Value>) -> String {
    let mut s = String::new();
    for r in records {
        s.push_str(&r.to_string());
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(id: &str, jobs: u64, spot: u64, low: f64, high: f64, score: f64) -> Pool {
        Pool {
            pool_id: id.into(),
            instance_type: String::new(),
            availability_zone: String::new(),
            jobs,
            spot_terminations: spot,
            termination_rate: spot as f64 / jobs as f64,
            ci_low: low,
            ci_high: high,
            score,
            degraded: false,
            last_event_at: "2026-11-26T23:50:00.123Z".into(),
        }
    }

    fn ranking() -> Ranking {
        Ranking {
            strategy: "pooled".into(),
            window_seconds: 86_400,
            total_pools: 3,
            data_age_seconds: Some(30),
            stale: false,
            pools: vec![
                pool("pool-r6a.xlarge-us-east-1c", 200, 0, 0.0, 0.01, 0.004),
                pool("pool-m6a.xlarge-us-east-1b", 200, 2, 0.002, 0.03, 0.011),
                pool("pool-c6a.xlarge-us-east-1a", 200, 20, 0.06, 0.15, 0.1),
            ],
        }
    }

    #[test]
    fn percentages_keep_significant_digits() {
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.0123), "1.23%");
        assert_eq!(percent(0.25), "25.0%");
        assert_eq!(percent(0.00041), "0.041%");
    }

    #[test]
    fn a_bar_puts_the_interval_and_the_point_on_one_scale() {
        assert_eq!(interval_bar(0.0, 0.5, 0.25, 1.0, 11), "━━━●━━");
        assert_eq!(interval_bar(0.5, 1.0, 0.6, 1.0, 11), "     ━●━━━━");
        // Clamped to the scale, and a zero scale does not divide by zero.
        assert_eq!(interval_bar(2.0, 3.0, 2.5, 1.0, 5), "    ●");
        assert_eq!(interval_bar(0.0, 0.0, 0.0, 0.0, 5), "●");
        assert_eq!(interval_bar(0.1, 0.2, 0.15, 1.0, 0), "");
    }

    #[test]
    fn the_ranking_table_is_aligned_and_marks_the_pick() {
        let out = ranking_table(&ranking(), &Style::plain());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "3 of 3 pools, strategy pooled, window 1d, newest event 30s ago"
        );
        assert!(lines[1].starts_with("   #  POOL"), "{out}");
        let pick = lines.iter().find(|l| l.contains("r6a")).unwrap();
        assert!(
            pick.starts_with("*  1  pool-r6a.xlarge-us-east-1c"),
            "{out}"
        );
        assert!(!out.contains('\x1b'), "no colour without a terminal: {out}");
        // Every pool row's columns start at the same offsets.
        let rows: Vec<&&str> = lines.iter().filter(|l| l.contains("pool-")).collect();
        let at = |l: &str, needle: &str| l[..l.find(needle).unwrap()].chars().count();
        let starts: Vec<usize> = rows.iter().map(|l| at(l, "2026-11-26")).collect();
        assert!(starts.windows(2).all(|w| w[0] == w[1]), "{out}");
        let bars: Vec<usize> = rows.iter().map(|l| l.chars().count()).collect();
        assert!(bars.windows(2).all(|w| w[0] == w[1]), "{out}");
        assert!(out.contains("15.0%"), "scale end: {out}");
        assert!(out.ends_with("● score (lower is safer)\n"), "{out}");
    }

    #[test]
    fn colour_is_applied_after_alignment() {
        let style = Style::detect(true, None);
        let out = ranking_table(&ranking(), &style);
        assert!(
            out.contains("\x1b[1;32m*  1  pool-r6a.xlarge-us-east-1c"),
            "{out:?}"
        );
        assert_eq!(
            out.replace("\x1b[1;32m", "")
                .replace("\x1b[1m", "")
                .replace("\x1b[2m", "")
                .replace("\x1b[0m", ""),
            ranking_table(&ranking(), &Style::plain())
        );
    }

    #[test]
    fn no_color_is_respected_and_needs_a_terminal() {
        assert!(Style::detect(true, None).color);
        assert!(Style::detect(true, Some("")).color);
        assert!(!Style::detect(true, Some("1")).color);
        assert!(!Style::detect(false, None).color);
    }

    #[test]
    fn the_choice_says_why() {
        let r = ranking();
        let c = Choice {
            pool: r.pools[0].clone(),
            strategy: "pooled".into(),
            window_seconds: 0,
            candidates: 3,
            probability_best: 0.87,
            margin: Some(0.007),
            data_age_seconds: Some(7_300),
            stale: true,
            alternatives: vec![r.pools[1].clone()],
        };
        let out = choice_table(&c, &Style::plain());
        assert!(
            out.starts_with("pick pool-r6a.xlarge-us-east-1c\n"),
            "{out}"
        );
        assert!(out.contains("best of 3 candidates with probability 87%, 0.70% ahead"));
        assert!(out.contains("window all history, newest event 2h ago (STALE)"));
        assert!(out.contains("*  1  pool-r6a"), "{out}");
        assert!(out.contains("   2  pool-m6a"), "{out}");
    }

    #[test]
    fn labels() {
        assert_eq!(window_label(0), "all history");
        assert_eq!(window_label(86_400 * 7), "7d");
        assert_eq!(window_label(5_400), "90m");
        assert_eq!(age_label(59), "59s");
        assert_eq!(
            short_time("2026-11-26T23:50:00.123Z"),
            "2026-11-26 23:50:00"
        );
        assert_eq!(short_time("2026-11-26T23:50:00Z"), "2026-11-26 23:50:00");
    }

    #[test]
    fn scale_and_launch_tables() {
        let scale: Scale = serde_json::from_value(serde_json::json!({
            "desired-worker-scale": 3, "workload": "ingest-worker", "queue": "events.ingest",
            "decided_by": "backlog", "recommendation": 3, "fallback": false, "source_up": true,
            "inputs": {"messages_ready": 1200, "messages_unacknowledged": 10, "consumers": 2,
                       "publish_rate": 50.0, "ack_rate": 48.5},
            "observed_at": "2026-11-26T23:50:00.123Z"}))
        .unwrap();
        let out = scale_table(&[scale], &Style::plain());
        assert!(out.lines().next().unwrap().starts_with("WORKLOAD"));
        assert!(
            out.contains("ingest-worker  events.ingest        3            3  backlog"),
            "{out}"
        );
        let launch: Launch = serde_json::from_value(serde_json::json!({
            "launch_id": "0193", "application": "astronauts", "state": "FAILED",
            "pool_id": "pool-c6a.xlarge-us-east-1a", "max_attempts": 3,
            "created_at": "2026-11-26T23:50:00.123Z", "updated_at": "2026-11-26T23:51:00.123Z",
            "attempts": [{"attempt": 1, "pool_id": "pool-c6a.xlarge-us-east-1a", "state": "FAILED",
                          "status": "FAILED", "reason": "SPOT_INSTANCE_TERMINATION",
                          "submitted_at": "2026-11-26T23:50:00.123Z", "finished_at": null}]}))
        .unwrap();
        let list = launches_table(std::slice::from_ref(&launch), &Style::plain());
        assert!(
            list.contains("0193    astronauts   FAILED  pool-c6a"),
            "{list}"
        );
        assert!(list.contains("1/3"), "{list}");
        let detail = launch_detail(&launch, &Style::plain());
        assert!(detail.contains("SPOT_INSTANCE_TERMINATION"), "{detail}");
    }

    #[test]
    fn machine_formats() {
        let v = serde_json::json!({"a": [1, 2]});
        assert_eq!(json(&v), "{\n  \"a\": [\n    1,\n    2\n  ]\n}\n");
        assert_eq!(
            ndjson(&[serde_json::json!(1), serde_json::json!({"b": true})]),
            "1\n{\"b\":true}\n"
        );
    }
}
