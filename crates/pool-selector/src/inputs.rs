//! What the model may be given besides the history, read once at startup: the zone-name → AZ-ID map
//! (`AZ_ID_MAP`) and the outside signals (`SPOT_ADVISOR_FILE`, `SPOT_PLACEMENT_SCORES_FILE`). All
//! optional and off by default; a file that is set but unreadable or malformed stops the start with
//! a message naming it (a silently ignored map would key zones by name without anyone noticing).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use pool_ranking::{Signals, ZoneIds};

/// Where the inputs come from.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ModelInputArgs {
    /// Zone names → AZ IDs, a JSON file: `{"us-east-1a": "use1-az4", …}` or the output of
    /// `aws ec2 describe-availability-zones`. Zone effects are then keyed by AZ ID, which names the
    /// same physical zone in every account (names are shuffled per account).
    #[arg(long, env = "AZ_ID_MAP")]
    pub az_id_map: Option<PathBuf>,
    /// AWS Spot Advisor's public JSON, a file or an http(s) URL read once at startup: each region and
    /// instance type's interruption band becomes a level of the shared prior, with a spread fitted to
    /// our own jobs (0 when the bands do not predict them). Unset: off.
    #[arg(long, env = "SPOT_ADVISOR_FILE")]
    pub spot_advisor: Option<String>,
    /// The operating system whose Spot Advisor bands are read.
    #[arg(long, env = "SPOT_ADVISOR_OS", default_value = "Linux")]
    pub spot_advisor_os: String,
    /// Output of `aws ec2 get-spot-placement-scores` (per AZ ID with `--single-availability-zone`,
    /// else per region): the score becomes a level of the shared prior like the bands. Unset: off.
    #[arg(long, env = "SPOT_PLACEMENT_SCORES_FILE")]
    pub placement_scores: Option<PathBuf>,
}

/// The inputs, parsed.
#[derive(Debug, Clone, Default)]
pub struct ModelInputs {
    pub zone_ids: Option<Arc<ZoneIds>>,
    pub signals: Option<Arc<Signals>>,
}

fn read(path: &Path, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {what} {}", path.display()))
}

/// Read and parse every input that is set.
pub async fn load(args: &ModelInputArgs) -> anyhow::Result<ModelInputs> {
    let zone_ids = match &args.az_id_map {
        Some(path) => {
            let ids = ZoneIds::parse(&read(path, "AZ_ID_MAP")?)
                .with_context(|| format!("AZ_ID_MAP {}", path.display()))?;
            tracing::info!(zones = ids.len(), path = %path.display(), "zones keyed by AZ ID");
            Some(Arc::new(ids))
        }
        None => None,
    };
    let mut signals: Option<Signals> = None;
    if let Some(source) = &args.spot_advisor {
        let text = if source.starts_with("http://") || source.starts_with("https://") {
            reqwest::get(source)
                .await
                .and_then(|r| r.error_for_status())
                .with_context(|| format!("fetching SPOT_ADVISOR_FILE {source}"))?
                .text()
                .await
                .with_context(|| format!("reading SPOT_ADVISOR_FILE {source}"))?
        } else {
            read(Path::new(source), "SPOT_ADVISOR_FILE")?
        };
        let s = Signals::default()
            .with_advisor(&text, &args.spot_advisor_os)
            .with_context(|| format!("SPOT_ADVISOR_FILE {source}"))?;
        tracing::info!(source, os = %args.spot_advisor_os, "Spot Advisor bands in the shared prior");
        signals = Some(s);
    }
    if let Some(path) = &args.placement_scores {
        let s = signals
            .take()
            .unwrap_or_default()
            .with_placement(&read(path, "SPOT_PLACEMENT_SCORES_FILE")?)
            .with_context(|| format!("SPOT_PLACEMENT_SCORES_FILE {}", path.display()))?;
        tracing::info!(path = %path.display(), "placement scores in the shared prior");
        signals = Some(s);
    }
    Ok(ModelInputs {
        zone_ids,
        signals: signals.map(Arc::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nothing_set_is_nothing_loaded() {
        let inputs = load(&ModelInputArgs::default()).await.unwrap();
        assert!(inputs.zone_ids.is_none() && inputs.signals.is_none());
    }

    #[tokio::test]
    async fn files_are_read_and_errors_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let map = dir.path().join("zones.json");
        std::fs::write(&map, r#"{"us-east-1a":"use1-az4"}"#).unwrap();
        let advisor = dir.path().join("advisor.json");
        std::fs::write(
            &advisor,
            r#"{"spot_advisor":{"us-east-1":{"Linux":{"c6a.large":{"s":60,"r":2}}}}}"#,
        )
        .unwrap();
        let args = ModelInputArgs {
            az_id_map: Some(map.clone()),
            spot_advisor: Some(advisor.display().to_string()),
            spot_advisor_os: "Linux".into(),
            placement_scores: None,
        };
        let inputs = load(&args).await.unwrap();
        assert_eq!(
            inputs.zone_ids.unwrap().id_of("us-east-1a"),
            Some("use1-az4")
        );
        assert_eq!(
            inputs
                .signals
                .unwrap()
                .advisor_band("us-east-1", "c6a.large"),
            Some(2)
        );
        std::fs::write(&map, "[]").unwrap();
        let e = load(&args).await.unwrap_err();
        assert!(format!("{e:#}").contains("AZ_ID_MAP"), "{e:#}");
        let missing = ModelInputArgs {
            placement_scores: Some(dir.path().join("nope.json")),
            ..ModelInputArgs::default()
        };
        let e = load(&missing).await.unwrap_err();
        assert!(
            format!("{e:#}").contains("SPOT_PLACEMENT_SCORES_FILE"),
            "{e:#}"
        );
    }
}
