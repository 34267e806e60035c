//! The ranking page served at `/`: server-rendered HTML with inline SVG bars, no script, no build
//! step and no external asset (it works offline, and a strict Content-Security-Policy holds). Pure
//! functions of the form's values and the ranking, so rendering and escaping are unit-tested.
//!
//! The page asks nothing of its own: the handler ([`crate::routes::ranking_page`]) fetches `/pools`
//! and `/backtest.svg` through the relay's cache like any API request, and hands the answers here.
//!
//! The markup is written with maud's `html!`, which escapes every value it is given unless told
//! otherwise (only the page's own style sheet is): what the user typed (echoed in the form, quoted in
//! error messages) and what the upstream answered (pool ids, times) cannot become markup.

use maud::{DOCTYPE, Markup, PreEscaped, html};
pub use pool_core::view::{Pool, Ranking, age_label, percent, window_label};

/// The form's fields, as the user typed them (echoed back into the form, escaped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pub instance_types: String,
    pub availability_zones: String,
    pub window: String,
    pub strategy: String,
}

impl Form {
    /// The form's values from a raw query string. Lenient (an undecodable query gives empty fields):
    /// this is only what to show; validation is the relay's query grammar, elsewhere.
    pub fn from_query(query: &str) -> Self {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        let mut form = Form::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "instance_types" => &mut form.instance_types,
                "availability_zones" => &mut form.availability_zones,
                "window" => &mut form.window,
                "strategy" => &mut form.strategy,
                _ => continue,
            };
            *slot = value;
        }
        form
    }
}

/// What the page shows below the form.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// The ranking (its first pool is the pick) and, when the upstream drew one, the backtest chart.
    Ranking {
        ranking: Ranking,
        /// The canonical query, for the links to the JSON answers.
        query: String,
        chart_svg: Option<String>,
    },
    /// Why there is no ranking: a refused parameter, no data, an unreachable upstream.
    Error {
        status: u16,
        message: String,
        field: Option<String>,
    },
}

/// Strategies offered by the form (the empty value: the server's default).
const STRATEGIES: [&str; 6] = pool_core::request::Strategy::ALL;

/// Width of a bar's drawing area (SVG user units; the SVG scales to its cell).
const BAR_WIDTH: f64 = 200.0;

/// One pool's interval on the shared scale `0..=max` as inline SVG: a grey track, the interval as a
/// blue band, the score as a dark dot. Labelled for screen readers.
pub fn bar_svg(p: &Pool, max: f64) -> Markup {
    let x = |v: f64| {
        if max > 0.0 && v.is_finite() {
            (v / max).clamp(0.0, 1.0) * BAR_WIDTH
        } else {
            0.0
        }
    };
    let (lo, hi) = (x(p.ci_low.min(p.ci_high)), x(p.ci_high.max(p.ci_low)));
    let label = format!(
        "score {}, interval {} to {}",
        percent(p.score),
        percent(p.ci_low),
        percent(p.ci_high)
    );
    // SVG elements are closed explicitly: inside HTML, `<rect>` without `</rect>` would swallow its
    // siblings.
    html! {
        svg class="bar" viewBox="-6 0 212 16" preserveAspectRatio="none" role="img" aria-label=(label) {
            rect x="0" y="7" width=(BAR_WIDTH) height="2" fill="#d0d4d9" {}
            rect x=(format!("{lo:.1}")) y="4" width=(format!("{:.1}", (hi - lo).max(1.0))) height="8" rx="2" fill="#3b6fb6" {}
            circle cx=(format!("{:.1}", x(p.score))) cy="8" r="5" fill="#14202e" {}
        }
    }
}

/// The whole page: the form (with the user's values), then the ranking or the error.
pub fn render(form: &Form, body: &Body) -> String {
    let title = match body {
        Body::Error { .. } => "Error · spot pool ranking",
        Body::Ranking { .. } => "Spot pool ranking",
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Pool Selector" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "Spot pool ranking" }
                    p { "Which EC2 spot pool is least likely to lose a Spark job to a spot termination: the pools of the chosen instance types and zones, best first, each with its termination rate and interval." }
                }
                main {
                    (render_form(form))
                    @match body {
                        Body::Error { status, message, field } => (render_error(*status, message, field.as_deref())),
                        Body::Ranking { ranking, query, chart_svg } => {
                            (render_ranking(ranking, query))
                            @if let Some(svg) = chart_svg { (render_chart(svg)) }
                        }
                    }
                }
                footer {
                    p { "Served by the relay from pool-selector's answers, cached like the API. Lower scores are safer; the interval is the range the true termination rate most likely lies in." }
                }
            }
        }
    }
    .into_string()
}

fn error_title(status: u16) -> &'static str {
    match status {
        400 | 414 => "Check the form",
        404 => "No matching data",
        503 => "The ranking service is busy or its storage is unavailable",
        504 => "The ranking service did not answer in time",
        _ => "The ranking service cannot be reached",
    }
}

fn render_error(status: u16, message: &str, field: Option<&str>) -> Markup {
    html! {
        section #error .error role="alert" aria-labelledby="error-title" {
            h2 #error-title {
                (error_title(status))
                @if let Some(field) = field { " (parameter " code { (field) } ")" }
            }
            p #error-message { (message) }
        }
    }
}

/// One labelled text input with its hint.
fn text_field(name: &str, label: &str, value: &str, hint: &str, placeholder: &str) -> Markup {
    html! {
        div .field {
            label for=(name) { (label) }
            input id=(name) name=(name) type="text" value=(value) placeholder=(placeholder)
                aria-describedby={ (name) "-hint" } autocomplete="off" spellcheck="false";
            small id={ (name) "-hint" } { (hint) }
        }
    }
}

fn render_form(form: &Form) -> Markup {
    let chosen = form.strategy.trim().to_ascii_lowercase();
    html! {
        form #filters method="get" action="/" role="search" aria-label="Which pools to rank" {
            (text_field("instance_types", "Instance types", &form.instance_types,
                "comma-separated family.size; empty: all", "c6a.xlarge,m6a.xlarge"))
            (text_field("availability_zones", "Availability zones", &form.availability_zones,
                "comma-separated; empty: all", "us-east-1a,us-east-1b"))
            (text_field("window", "Window", &form.window,
                "look-back: 30m, 24h, 7d; 0: all history; empty: the server's", "24h"))
            div .field {
                label for="strategy" { "Strategy" }
                select #strategy name="strategy" aria-describedby="strategy-hint" {
                    option value="" selected[chosen.is_empty()] { "server default" }
                    @for s in STRATEGIES {
                        option value=(s) selected[chosen == s] { (s) }
                    }
                    // A strategy the form does not list (a typo in a hand-written URL) stays visible
                    // and selected, so the error below refers to something the user can see.
                    @if !chosen.is_empty() && !STRATEGIES.contains(&chosen.as_str()) {
                        option value=(form.strategy) selected { (form.strategy) }
                    }
                }
                small #strategy-hint { "pooled: shared prior and adaptive recency" }
            }
            div .actions { button type="submit" { "Rank pools" } }
        }
    }
}

fn render_pick(pick: &Pool) -> Markup {
    html! {
        section #pick .pick-card aria-labelledby="pick-title" {
            h2 #pick-title { "Pick" }
            p { strong #pick-pool { (pick.pool_id) } }
            p {
                (pick.jobs) " jobs, " (pick.spot_terminations) " lost to spot terminations ("
                (percent(pick.termination_rate)) "); score " (percent(pick.score)) ", interval "
                (percent(pick.ci_low)) " – " (percent(pick.ci_high)) "."
            }
        }
    }
}

/// One row of the table; the first is the pick (highlighted, badged: not by colour alone).
fn render_row(rank: usize, p: &Pool, max: f64) -> Markup {
    let pick = rank == 1;
    let class = match (pick, p.degraded) {
        (true, _) => Some("pick"),
        (false, true) => Some("degraded"),
        _ => None,
    };
    html! {
        tr class=[class] aria-current=[pick.then_some("true")] data-pool=(p.pool_id) {
            td .num { (rank) }
            th scope="row" {
                span .pool { (p.pool_id) }
                @if pick { " " span .badge { "pick" } }
                @else if p.degraded { " " span class="badge warn" { "degraded" } }
            }
            td .num { (p.jobs) }
            td .num { (p.spot_terminations) }
            td .num { (percent(p.termination_rate)) }
            td .interval {
                (bar_svg(p, max))
                span .range { (percent(p.score)) " (" (percent(p.ci_low)) " – " (percent(p.ci_high)) ")" }
            }
            td .time { (short_time(&p.last_event_at)) }
        }
    }
}

fn render_ranking(r: &Ranking, query: &str) -> Markup {
    let max = r
        .pools
        .iter()
        .map(|p| p.ci_high.max(p.score))
        .fold(0.0_f64, f64::max);
    let max = if max > 0.0 { max } else { 0.01 };
    let age = r
        .data_age_seconds
        .map(|a| {
            format!(
                "; newest event {}{}",
                age_label(a),
                if r.stale { " ago (stale)" } else { " ago" }
            )
        })
        .unwrap_or_default();
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    html! {
        @if let Some(pick) = r.pools.first() { (render_pick(pick)) }
        section aria-labelledby="pools-title" {
            h2 #pools-title { "Pools" }
            p .summary {
                (r.pools.len()) " of " (r.total_pools) " pools, strategy " (r.strategy) ", window "
                (window_label(r.window_seconds)) (age) ". JSON: "
                a href={ "/pools" (q) } { "/pools" } ", " a href={ "/get-pool" (q) } { "/get-pool" } "."
            }
            div .scroll {
                table #pools {
                    caption {
                        "Pools ranked best first; the highlighted row is the pick. The bars share one scale from 0 to "
                        (percent(max)) "."
                    }
                    thead {
                        tr {
                            th scope="col" { "#" }
                            th scope="col" { "Pool" }
                            th scope="col" .num { "Jobs" }
                            th scope="col" .num { "Spot terminations" }
                            th scope="col" .num { "Rate" }
                            th scope="col" { "Score and interval" }
                            th scope="col" { "Last event" }
                        }
                    }
                    tbody {
                        @for (i, p) in r.pools.iter().enumerate() { (render_row(i + 1, p, max)) }
                    }
                }
            }
        }
    }
}

/// The backtest chart, as an `<img>` of a data URI: drawn offline, and an SVG shown as an image can run
/// nothing (the upstream's SVG is never inlined as markup).
fn render_chart(svg: &str) -> Markup {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(svg.as_bytes());
    html! {
        section #backtest aria-labelledby="backtest-title" {
            h2 #backtest-title { "Backtest" }
            p { "The realized termination rate of each strategy's picks over the stored history." }
            img .chart src={ "data:image/svg+xml;base64," (data) }
                alt="Backtest chart: the cumulative realized termination rate of each ranking strategy's picks, hour by hour";
        }
    }
}

/// `2026-11-26T23:50:00.123Z` → `2026-11-26 23:50 UTC`.
fn short_time(ts: &str) -> String {
    if ts.len() >= 16 && ts.is_char_boundary(16) && ts.as_bytes().get(10) == Some(&b'T') {
        format!("{} {} UTC", &ts[..10], &ts[11..16])
    } else {
        ts.to_owned()
    }
}

/// Contrast: body text #14202e on white (about 16:1), muted text #4a5563 (7.5:1), the pick's row on
/// #e3f2e6 with a dark green bar and a "pick" badge (not colour alone), errors #7a1414 on #fdecec.
const STYLE: &str = r#"
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#14202e;background:#fff}
header,main,footer{max-width:72rem;margin:0 auto;padding:0 1rem}
header{padding-top:1rem}
h1{font-size:1.6rem;margin:.5rem 0}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
header p,footer p,.summary,small{color:#4a5563}
a{color:#1a4f9c}
form{display:flex;flex-wrap:wrap;gap:.75rem 1rem;align-items:flex-start;padding:1rem;border:1px solid #c9ced6;border-radius:.5rem;background:#f6f7f9}
.field{display:flex;flex-direction:column;flex:1 1 12rem;min-width:0}
label{font-weight:600}
input,select,button{font:inherit;padding:.45rem .6rem;border:1px solid #6b7483;border-radius:.35rem;background:#fff;color:#14202e;min-height:2.75rem}
input:focus,select:focus,button:focus{outline:3px solid #1a4f9c;outline-offset:1px}
small{font-size:.8rem}
.actions{padding-top:1.5rem}
button{background:#1a4f9c;border-color:#1a4f9c;color:#fff;font-weight:600;cursor:pointer;padding:.45rem 1.2rem}
.error{margin-top:1rem;padding:1rem;border-left:6px solid #7a1414;background:#fdecec;color:#7a1414}
.error h2{margin:0 0 .25rem}
.pick-card{margin-top:1rem;padding:.75rem 1rem;border-left:6px solid #1b6b33;background:#e3f2e6}
.pick-card h2{margin:0}
.pick-card p{margin:.25rem 0}
.pool{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9rem;word-break:break-all}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;min-width:40rem}
caption{text-align:left;color:#4a5563;padding:.25rem 0}
th,td{padding:.4rem .5rem;border-bottom:1px solid #dde1e6;text-align:left;vertical-align:middle}
thead th{border-bottom:2px solid #6b7483;white-space:nowrap}
tbody th{font-weight:400}
.num{text-align:right;font-variant-numeric:tabular-nums}
tr.pick{background:#e3f2e6;box-shadow:inset 6px 0 0 #1b6b33}
tr.pick th .pool{font-weight:700}
.badge{display:inline-block;margin-left:.4rem;padding:0 .4rem;border-radius:.25rem;background:#1b6b33;color:#fff;font-size:.75rem;font-weight:700;text-transform:uppercase}
.badge.warn{background:#8a4b00}
.interval{min-width:12rem}
.bar{display:block;width:100%;height:1rem}
.range{font-size:.8rem;color:#4a5563;font-variant-numeric:tabular-nums}
.time{white-space:nowrap;font-size:.9rem}
.chart{display:block;max-width:100%;height:auto;border:1px solid #dde1e6}
@media (max-width:40rem){h1{font-size:1.3rem}.field{flex-basis:100%}.actions{padding-top:0}table{min-width:34rem}.time{display:none}}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    const EVIL: &str = r#"<script>alert("x")</script>&'"#;
    /// How maud escapes [`EVIL`] (a quote `'` is harmless in text and in double-quoted attributes).
    const ESCAPED: &str = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;'";

    fn pool(id: &str, jobs: u64, spot: u64, lo: f64, hi: f64, score: f64) -> Pool {
        Pool {
            pool_id: id.into(),
            instance_type: String::new(),
            availability_zone: String::new(),
            jobs,
            spot_terminations: spot,
            termination_rate: spot as f64 / jobs as f64,
            ci_low: lo,
            ci_high: hi,
            score,
            degraded: false,
            last_event_at: "2026-11-26T23:50:00.123Z".into(),
        }
    }

    fn ranking() -> Ranking {
        Ranking {
            strategy: "pooled".into(),
            window_seconds: 86_400,
            total_pools: 2,
            data_age_seconds: Some(40),
            stale: false,
            pools: vec![
                pool("pool-r6a.xlarge-us-east-1c", 200, 0, 0.0, 0.01, 0.004),
                pool("pool-c6a.xlarge-us-east-1a", 200, 20, 0.06, 0.15, 0.1),
            ],
        }
    }

    #[test]
    fn every_form_value_is_echoed_escaped() {
        let form = Form {
            instance_types: EVIL.into(),
            availability_zones: EVIL.into(),
            window: EVIL.into(),
            strategy: EVIL.into(),
        };
        let html = render(
            &form,
            &Body::Error {
                status: 400,
                message: format!("instance_types: {EVIL} is not family.size"),
                field: Some(EVIL.into()),
            },
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains(EVIL));
        // The three text inputs, the unknown strategy's option, the message and the field.
        assert_eq!(html.matches(ESCAPED).count(), 3 + 2 + 2, "{html}");
        assert!(html.contains(r#"role="alert""#));
    }

    #[test]
    fn values_from_the_upstream_are_escaped_too() {
        let mut r = ranking();
        r.pools[0].pool_id = EVIL.into();
        r.pools[0].last_event_at = EVIL.into();
        r.strategy = EVIL.into();
        let html = render(
            &Form::default(),
            &Body::Ranking {
                ranking: r,
                query: "instance_types=%3Cb%3E\"".into(),
                chart_svg: None,
            },
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains(r#"href="/pools?instance_types=%3Cb%3E&quot;""#));
    }

    #[test]
    fn the_pick_is_the_first_pool_and_is_highlighted() {
        let html = render(
            &Form::default(),
            &Body::Ranking {
                ranking: ranking(),
                query: "window=86400".into(),
                chart_svg: None,
            },
        );
        assert!(html.contains(r#"<strong id="pick-pool">pool-r6a.xlarge-us-east-1c</strong>"#));
        assert_eq!(html.matches(r#"class="pick""#).count(), 1);
        let pick_row = html
            .lines()
            .find(|l| l.contains(r#"class="pick""#))
            .unwrap();
        assert!(
            pick_row.contains("pool-r6a.xlarge-us-east-1c"),
            "{pick_row}"
        );
        assert!(pick_row.contains(r#"<span class="badge">pick</span>"#));
        assert_eq!(html.matches("<svg class=\"bar\"").count(), 2);
        assert!(html.contains("2 of 2 pools, strategy pooled, window 1d; newest event 40s ago"));
        assert!(!html.contains("id=\"backtest\""));
        // No external asset, no script: the page works offline.
        for banned in ["<script", "src=\"http", "href=\"http", "@import", "url("] {
            assert!(!html.contains(banned), "{banned}");
        }
    }

    #[test]
    fn form_fields_are_labelled_and_keep_their_values() {
        let form = Form::from_query(
            "instance_types=c6a.xlarge%2Cm6a.xlarge&availability_zones=&window=24h&strategy=Naive&limit=3",
        );
        assert_eq!(form.instance_types, "c6a.xlarge,m6a.xlarge");
        assert_eq!(form.window, "24h");
        let html = render(
            &form,
            &Body::Error {
                status: 404,
                message: "no job events".into(),
                field: None,
            },
        );
        for id in ["instance_types", "availability_zones", "window", "strategy"] {
            assert!(html.contains(&format!(r#"<label for="{id}">"#)), "{id}");
            assert!(html.contains(&format!(r#"id="{id}" name="{id}""#)), "{id}");
        }
        assert!(html.contains(r#"value="c6a.xlarge,m6a.xlarge""#));
        assert!(html.contains(r#"<option value="naive" selected>"#));
        assert!(html.contains("No matching data"));
        assert!(html.contains(r#"<meta name="viewport""#));
        assert_eq!(Form::from_query("%zz=1&&"), Form::default());
    }

    #[test]
    fn the_chart_is_an_image_of_a_data_uri() {
        let html = render(
            &Form::default(),
            &Body::Ranking {
                ranking: ranking(),
                query: String::new(),
                chart_svg: Some("<svg><script>x</script></svg>".into()),
            },
        );
        assert!(html.contains(r#"<img class="chart" src="data:image/svg+xml;base64,PHN2Zz4"#));
        assert!(
            !html.contains("<script"),
            "the chart is never inlined as markup"
        );
        assert!(html.contains(r#"alt="Backtest chart"#));
    }

    #[test]
    fn bars_share_one_scale() {
        let p = pool("p", 10, 1, 0.05, 0.1, 0.075);
        let svg = bar_svg(&p, 0.1).into_string();
        assert!(
            svg.contains(r#"<rect x="100.0" y="4" width="100.0""#),
            "{svg}"
        );
        assert!(svg.contains(r#"cx="150.0""#), "{svg}");
        assert!(svg.contains(r#"aria-label="score 7.50%, interval 5.00% to 10.0%""#));
        // A zero scale does not divide by zero.
        assert!(
            bar_svg(&pool("p", 1, 0, 0.0, 0.0, 0.0), 0.0)
                .into_string()
                .contains(r#"cx="0.0""#)
        );
    }

    #[test]
    fn labels() {
        assert_eq!(
            short_time("2026-11-26T23:50:00.123Z"),
            "2026-11-26 23:50 UTC"
        );
        assert_eq!(short_time("garbage"), "garbage");
        assert_eq!(window_label(0), "all history");
        assert_eq!(percent(0.0123), "1.23%");
    }
}
