//! The pass summary `--once --report text|json` prints on standard output, so a script (`make run`)
//! reads the compactor's own account of its pass instead of picking fields out of its log.

use std::time::Duration;

use pool_history::compact::PassReport;
use serde::Serialize;

/// What `--report` prints after a `--once` pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ReportFormat {
    /// Nothing (the log has the pass's summary line).
    #[default]
    None,
    /// One sentence for people.
    Text,
    /// One JSON object for programs.
    Json,
}

/// One pass, as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassSummary {
    /// Closed hours owned by this shard.
    pub closed_hours: u64,
    pub hours_compacted: u64,
    pub days_merged: u64,
    /// Events read from raw objects (distinct events and redelivered copies).
    pub events: u64,
    /// Hours or days that could not be compacted (the exit status is non-zero then).
    pub errors: u64,
    /// Owned closed hours still without an up-to-date rollup.
    pub pending_hours: u64,
    /// How long the oldest pending hour has waited since it became eligible.
    pub lag_seconds: u64,
    /// End of the newest closed hour (RFC 3339), if any.
    pub newest_closed: Option<String>,
    /// How long the pass took.
    pub seconds: f64,
}

impl PassSummary {
    pub fn new(report: &PassReport, took: Duration) -> Self {
        Self {
            closed_hours: report.closed_hours,
            hours_compacted: report.hours_compacted,
            days_merged: report.days_merged,
            events: report.events,
            errors: report.errors,
            pending_hours: report.pending_hours,
            lag_seconds: report.lag.as_secs(),
            newest_closed: report.newest_closed.map(|t| t.to_rfc3339()),
            seconds: took.as_secs_f64(),
        }
    }

    /// The sentence `--report text` prints.
    pub fn text(&self) -> String {
        let took = format!("{:.3}s", self.seconds);
        let mut s = if self.hours_compacted == 0 && self.days_merged == 0 {
            format!("the rollups are up to date (checked in {took})")
        } else {
            format!(
                "rolled up {} closed hours ({} events) and merged {} days in {took}",
                self.hours_compacted, self.events, self.days_merged
            )
        };
        if self.errors > 0 {
            s.push_str(&format!(
                "; {} hours or days could not be compacted",
                self.errors
            ));
        }
        s
    }

    /// What `format` prints, if anything.
    pub fn render(&self, format: ReportFormat) -> Option<String> {
        match format {
            ReportFormat::None => None,
            ReportFormat::Text => Some(self.text()),
            ReportFormat::Json => {
                Some(serde_json::to_string(self).expect("a summary of numbers serialises"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(hours: u64, days: u64, errors: u64) -> PassReport {
        PassReport {
            closed_hours: 72,
            hours_compacted: hours,
            days_merged: days,
            events: 1_000,
            errors,
            pending_hours: errors,
            lag: Duration::from_secs(5),
            newest_closed: None,
        }
    }

    #[test]
    fn text_says_what_the_pass_did() {
        let took = Duration::from_millis(1_234);
        assert_eq!(
            PassSummary::new(&report(72, 3, 0), took).text(),
            "rolled up 72 closed hours (1000 events) and merged 3 days in 1.234s"
        );
        assert_eq!(
            PassSummary::new(&report(0, 0, 0), took).text(),
            "the rollups are up to date (checked in 1.234s)"
        );
        assert!(
            PassSummary::new(&report(1, 0, 2), took)
                .text()
                .ends_with("; 2 hours or days could not be compacted")
        );
    }

    #[test]
    fn json_carries_every_field_and_none_prints_nothing() {
        let s = PassSummary::new(&report(72, 3, 0), Duration::from_secs(2));
        let v: serde_json::Value =
            serde_json::from_str(&s.render(ReportFormat::Json).unwrap()).unwrap();
        assert_eq!(v["hours_compacted"], 72);
        assert_eq!(v["days_merged"], 3);
        assert_eq!(v["events"], 1_000);
        assert_eq!(v["lag_seconds"], 5);
        assert_eq!(v["seconds"], 2.0);
        assert_eq!(s.render(ReportFormat::None), None);
    }
}
