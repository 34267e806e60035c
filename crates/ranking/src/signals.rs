//! Outside signals: what AWS publishes about interruption risk, as extra levels of the hierarchy.
//!
//! * **Spot Advisor** (the public JSON behind the Spot Instance Advisor page):
//!   `spot_advisor.<region>.<os>.<instance type>.r` is the interruption-frequency band, 0–4 for
//!   `<5 %`, `5–10 %`, `10–15 %`, `15–20 %` and `>20 %` of instances interrupted in a month.
//! * **Spot placement scores** (`aws ec2 get-spot-placement-scores`, with or without
//!   `--single-availability-zone`): `{"SpotPlacementScores": [{"Region", "AvailabilityZoneId"?,
//!   "Score"}]}`, 1–10, higher is likelier to get and keep capacity.
//!
//! Neither is a termination probability per Spark job (a band is about a month of one instance; a
//! score about a capacity request), so neither is used as a rate. Each becomes a *level* of the
//! hierarchy ([`crate::hierarchy::LevelKind::AdvisorBand`], `PlacementScore`): pools in the same band
//! share an effect whose size is learnt from our own jobs, with its own fitted variance component. A
//! signal that does not predict our data gets a spread of 0 and changes nothing; one that does lets a
//! pool with little history of its own start from what its band's pools show.

use std::collections::HashMap;

use serde::Deserialize;

/// A signal file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no `spot_advisor` object: not the Spot Advisor JSON")]
    NotAdvisor,
    #[error("no `SpotPlacementScores` list: not get-spot-placement-scores output")]
    NotPlacement,
    #[error("{0}: no entries")]
    Empty(&'static str),
}

/// Interruption bands and placement scores, keyed as AWS keys them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Signals {
    /// (region, instance type) → band 0–4.
    advisor: HashMap<(String, String), u8>,
    /// AZ ID → score 1–10.
    placement_zone: HashMap<String, u8>,
    /// Region → score 1–10 (scores asked for a whole region).
    placement_region: HashMap<String, u8>,
}

#[derive(Deserialize)]
struct AdvisorEntry {
    r: u8,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PlacementFile {
    spot_placement_scores: Vec<PlacementEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PlacementEntry {
    region: String,
    #[serde(default)]
    availability_zone_id: Option<String>,
    score: u8,
}

impl Signals {
    /// Read the Spot Advisor JSON's bands for operating system `os` (`Linux`).
    pub fn with_advisor(mut self, json: &str, os: &str) -> Result<Self, SignalError> {
        let v: serde_json::Value = serde_json::from_str(json)?;
        let regions = v
            .get("spot_advisor")
            .and_then(|a| a.as_object())
            .ok_or(SignalError::NotAdvisor)?;
        for (region, by_os) in regions {
            let Some(types) = by_os.get(os).and_then(|t| t.as_object()) else {
                continue;
            };
            for (it, entry) in types {
                if let Ok(e) = serde_json::from_value::<AdvisorEntry>(entry.clone()) {
                    self.advisor
                        .insert((region.clone(), it.to_ascii_lowercase()), e.r.min(4));
                }
            }
        }
        if self.advisor.is_empty() {
            return Err(SignalError::Empty("spot advisor"));
        }
        Ok(self)
    }

    /// Read `get-spot-placement-scores` output.
    pub fn with_placement(mut self, json: &str) -> Result<Self, SignalError> {
        let v: serde_json::Value = serde_json::from_str(json)?;
        if v.get("SpotPlacementScores").is_none() {
            return Err(SignalError::NotPlacement);
        }
        let file: PlacementFile = serde_json::from_value(v)?;
        if file.spot_placement_scores.is_empty() {
            return Err(SignalError::Empty("placement scores"));
        }
        for e in file.spot_placement_scores {
            let score = e.score.clamp(1, 10);
            match e.availability_zone_id {
                Some(id) => self.placement_zone.insert(id.to_ascii_lowercase(), score),
                None => self.placement_region.insert(e.region, score),
            };
        }
        Ok(self)
    }

    /// Bands from pairs (tests and the benchmark).
    pub fn from_bands(bands: impl IntoIterator<Item = ((String, String), u8)>) -> Self {
        Self {
            advisor: bands.into_iter().collect(),
            ..Self::default()
        }
    }

    /// The interruption band of `instance_type` in `region`.
    pub fn advisor_band(&self, region: &str, instance_type: &str) -> Option<u8> {
        self.advisor
            .get(&(region.to_owned(), instance_type.to_owned()))
            .copied()
    }

    /// The placement score of the zone with AZ ID `zone_id`, else of `region`.
    pub fn placement_score(&self, zone_id: Option<&str>, region: &str) -> Option<u8> {
        zone_id
            .and_then(|id| self.placement_zone.get(id))
            .or_else(|| self.placement_region.get(region))
            .copied()
    }

    pub fn has_advisor(&self) -> bool {
        !self.advisor.is_empty()
    }

    pub fn has_placement(&self) -> bool {
        !self.placement_zone.is_empty() || !self.placement_region.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADVISOR: &str = r#"{
      "global_rate": "<10%",
      "ranges": [{"index":0,"label":"<5%","dots":0,"max":5},{"index":1,"label":"5-10%","dots":1,"max":11}],
      "instance_types": {"c6a.large": {"emr": true, "cores": 2, "ram_gb": 4.0}},
      "spot_advisor": {
        "us-east-1": {"Linux": {"c6a.large": {"s": 62, "r": 0}, "m6i.xlarge": {"s": 70, "r": 3}},
                      "Windows": {"c6a.large": {"s": 40, "r": 4}}},
        "eu-west-1": {"Linux": {"c6a.large": {"s": 55, "r": 1}}}
      }
    }"#;

    #[test]
    fn advisor_bands_are_read_per_region_type_and_os() {
        let s = Signals::default().with_advisor(ADVISOR, "Linux").unwrap();
        assert_eq!(s.advisor_band("us-east-1", "c6a.large"), Some(0));
        assert_eq!(s.advisor_band("us-east-1", "m6i.xlarge"), Some(3));
        assert_eq!(s.advisor_band("eu-west-1", "c6a.large"), Some(1));
        assert_eq!(s.advisor_band("eu-west-1", "m6i.xlarge"), None);
        let w = Signals::default().with_advisor(ADVISOR, "Windows").unwrap();
        assert_eq!(w.advisor_band("us-east-1", "c6a.large"), Some(4));
        assert!(matches!(
            Signals::default().with_advisor("{}", "Linux"),
            Err(SignalError::NotAdvisor)
        ));
        assert!(matches!(
            Signals::default().with_advisor(ADVISOR, "BSD"),
            Err(SignalError::Empty(_))
        ));
    }

    #[test]
    fn placement_scores_by_zone_id_then_region() {
        let json = r#"{"SpotPlacementScores":[
            {"Region":"us-east-1","AvailabilityZoneId":"use1-az1","Score":9},
            {"Region":"us-east-1","AvailabilityZoneId":"use1-az4","Score":3},
            {"Region":"eu-west-1","Score":7}]}"#;
        let s = Signals::default().with_placement(json).unwrap();
        assert_eq!(s.placement_score(Some("use1-az1"), "us-east-1"), Some(9));
        assert_eq!(s.placement_score(Some("use1-az4"), "us-east-1"), Some(3));
        assert_eq!(s.placement_score(Some("euw1-az1"), "eu-west-1"), Some(7));
        assert_eq!(s.placement_score(None, "us-east-1"), None);
        assert!(s.has_placement() && !s.has_advisor());
        assert!(matches!(
            Signals::default().with_placement(r#"{"x":1}"#),
            Err(SignalError::NotPlacement)
        ));
    }
}
