//! Which objects a scan reads: the table over the history and the partition filters that go with it.
//!
//! DataFusion narrows a listing by a partition prefix only for equality filters; a range on `dt`/`hr`
//! lists every partition of the history first and prunes afterwards. On S3 with the ingest-worker
//! writing an object per partition every few seconds, that listing grows by about a million keys a
//! month, so a 24-hour query would pay for 30 days of listing. Windows of up to
//! [`MAX_ROOTED_WINDOW_DAYS`] are therefore read from explicit roots, listed concurrently, and so are
//! the hours a rollup does not cover.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::functions::expr_fn::{ends_with, starts_with};
use datafusion::prelude::{Expr, col, lit};

use pool_core::event::Partition;
use pool_storage::Storage;

use crate::query::Query;

/// Longest window (in days, counting the day after today) read from per-partition roots instead of a
/// listing of the whole history.
pub const MAX_ROOTED_WINDOW_DAYS: i64 = 31;

/// The columns read from every event. All nullable: a missing field is an invalid row, not a failed query.
pub fn event_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        // Read as text and parsed in the tally (`parse_timestamp_micros`): Arrow's general timestamp
        // parser was a tenth of a whole-history scan.
        Field::new("finished_at", DataType::Utf8, true),
        Field::new("job_id", DataType::Utf8, true),
        Field::new("pool_id", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, true),
    ]))
}

/// How the history is laid out under the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One NDJSON object (the seed's layout).
    SingleObject,
    /// NDJSON objects directly in the folder.
    Flat,
    /// Hive partitions `dt=YYYY-MM-DD/hr=HH/`.
    Partitioned,
}

/// What one scan reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The whole table, pruned by partition filters derived from the query's cutoff.
    Whole,
    /// Only these folders, relative to the root (`dt=…/hr=…` or `dt=…`), each with a trailing `/`.
    Roots(Vec<String>),
}

/// Folders from the partition `from` to the end of the day before `until_day`, as few roots as
/// possible: the hours of `from`'s day, then whole days.
pub fn roots_from(from: Partition, until_day: NaiveDate) -> Vec<String> {
    let mut roots = Vec::new();
    if from.date >= until_day {
        return roots;
    }
    for hour in from.hour..24 {
        roots.push(format!(
            "{}/",
            Partition {
                date: from.date,
                hour
            }
            .path()
        ));
    }
    let mut day = from.date;
    loop {
        day = day.succ_opt().expect("dates have a successor");
        if day >= until_day {
            break;
        }
        roots.push(format!("{}/", Partition::day_folder(day)));
    }
    roots
}

/// The roots of a windowed query over the hive layout: the hours of the cutoff's day from the cutoff
/// hour on, then whole days up to and including the day after today, so events stamped up to a day
/// ahead (producer clock skew) are still counted. `None` for the whole history or long windows.
pub fn window_roots(cutoff: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<Vec<String>> {
    let cutoff = cutoff?;
    let first = Partition::of(&cutoff);
    let until = (now + chrono::Duration::days(2)).date_naive();
    if (until - first.date).num_days() > MAX_ROOTED_WINDOW_DAYS + 1 {
        return None;
    }
    Some(roots_from(first, until))
}

/// The listing table for `choice`, read with `format`.
pub fn listing_table(
    storage: &Storage,
    layout: Layout,
    choice: &Choice,
    format: Arc<dyn FileFormat>,
) -> Result<ListingTable, DataFusionError> {
    let json = || Arc::clone(&format);
    match choice {
        Choice::Whole => {
            let url = ListingTableUrl::parse(storage.root_url())?;
            let mut options = ListingOptions::new(json()).with_file_extension(
                if layout == Layout::SingleObject {
                    ""
                } else {
                    ".json"
                },
            );
            if layout == Layout::Partitioned {
                options = options.with_table_partition_cols(vec![
                    ("dt".to_owned(), DataType::Utf8),
                    ("hr".to_owned(), DataType::Utf8),
                ]);
            }
            ListingTable::try_new(
                ListingTableConfig::new(url)
                    .with_listing_options(options)
                    .with_schema(event_schema()),
            )
        }
        Choice::Roots(roots) => {
            let base = storage.root_url();
            let urls = roots
                .iter()
                .map(|r| ListingTableUrl::parse(format!("{base}{r}")))
                .collect::<Result<Vec<_>, _>>()?;
            let options = ListingOptions::new(json()).with_file_extension(".json");
            ListingTable::try_new(
                ListingTableConfig::new_with_multi_paths(urls)
                    .with_listing_options(options)
                    .with_schema(event_schema()),
            )
        }
    }
}

/// Filters that only touch `dt`/`hr`: DataFusion evaluates them on the listing, before any object is
/// opened. Only the whole table of a partitioned layout has those columns.
pub fn partition_filters(q: &Query, layout: Layout, choice: &Choice) -> Vec<Expr> {
    match (layout, choice, q.cutoff()) {
        (Layout::Partitioned, Choice::Whole, Some(cutoff)) => {
            let p = Partition::of(&cutoff);
            vec![
                col("dt")
                    .gt(lit(p.dt()))
                    .or(col("dt").eq(lit(p.dt())).and(col("hr").gt_eq(lit(p.hr())))),
            ]
        }
        _ => vec![],
    }
}

/// Row filters on the event columns, pushed below the projection. The exact window (`finished_at` ≥
/// cutoff) and the exact pool match are applied in the tally, where each value is parsed anyway; these
/// are cheap prefix/suffix pre-filters. Values come from parsed types, never from raw request text.
pub fn row_filters(q: &Query) -> Vec<Expr> {
    let mut filters = vec![];
    if let Some(e) = any_of(
        q.instance_types
            .iter()
            .map(|t| starts_with(col("pool_id"), lit(format!("pool-{t}-")))),
    ) {
        filters.push(e);
    }
    if let Some(e) = any_of(
        q.zones
            .iter()
            .map(|z| ends_with(col("pool_id"), lit(format!("-{z}")))),
    ) {
        filters.push(e);
    }
    filters
}

fn any_of(exprs: impl Iterator<Item = Expr>) -> Option<Expr> {
    exprs.reduce(|a, b| a.or(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn roots_cover_the_cutoff_hour_onwards_without_overlap() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 30, 0).unwrap();
        let cutoff = now - chrono::Duration::hours(26);
        let roots = window_roots(Some(cutoff), now).unwrap();
        assert_eq!(roots[0], "dt=2026-11-21/hr=08/");
        assert_eq!(roots[15], "dt=2026-11-21/hr=23/");
        assert_eq!(
            &roots[16..],
            ["dt=2026-11-22/", "dt=2026-11-23/"],
            "today and tomorrow as whole days"
        );
        assert_eq!(window_roots(None, now), None);
        assert_eq!(
            window_roots(Some(now - chrono::Duration::days(40)), now),
            None
        );
    }

    #[test]
    fn roots_from_an_hour_to_a_day() {
        let p = Partition {
            date: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            hour: 23,
        };
        assert_eq!(
            roots_from(p, NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()),
            ["dt=2026-11-22/hr=23/", "dt=2026-11-23/"]
        );
        assert!(roots_from(p, p.date).is_empty());
    }
}
