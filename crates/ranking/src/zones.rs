//! Zone names to AZ IDs.
//!
//! AWS shuffles availability-zone *names* per account: `us-east-1a` in one account may be
//! `us-east-1c` in another, while the AZ *ID* (`use1-az1`) names the same physical zone everywhere.
//! Zone effects learnt from one account's names are therefore keyed by AZ ID when a map is given, so
//! that they line up with placement scores (which AWS reports by AZ ID) and across accounts.
//!
//! Two JSON forms are accepted: a plain object `{"us-east-1a": "use1-az1", …}`, or the output of
//! `aws ec2 describe-availability-zones` (`{"AvailabilityZones": [{"ZoneName", "ZoneId",
//! "RegionName", …}]}`).

use std::collections::HashMap;

use serde::Deserialize;

/// A zone map that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ZoneMapError {
    #[error("the zone map is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "the zone map is neither an object of zone names to AZ IDs nor DescribeAvailabilityZones output"
    )]
    Shape,
    #[error("the zone map gives {name} two AZ IDs ({first} and {second})")]
    Conflict {
        name: String,
        first: String,
        second: String,
    },
    #[error("the zone map is empty")]
    Empty,
}

/// Zone name → AZ ID (and region, when the map says).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZoneIds {
    ids: HashMap<String, String>,
    regions: HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Described {
    availability_zones: Vec<DescribedZone>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribedZone {
    zone_name: String,
    zone_id: String,
    #[serde(default)]
    region_name: Option<String>,
}

impl ZoneIds {
    /// Parse either JSON form (see the module docs).
    pub fn parse(json: &str) -> Result<Self, ZoneMapError> {
        let value: serde_json::Value = serde_json::from_str(json)?;
        let mut out = ZoneIds::default();
        if value.get("AvailabilityZones").is_some() {
            let d: Described = serde_json::from_value(value)?;
            for z in d.availability_zones {
                out.insert(z.zone_name.clone(), z.zone_id)?;
                if let Some(r) = z.region_name {
                    out.regions.insert(z.zone_name, r);
                }
            }
        } else if let Some(map) = value.as_object() {
            for (name, id) in map {
                let id = id.as_str().ok_or(ZoneMapError::Shape)?;
                out.insert(name.clone(), id.to_owned())?;
            }
        } else {
            return Err(ZoneMapError::Shape);
        }
        if out.ids.is_empty() {
            return Err(ZoneMapError::Empty);
        }
        Ok(out)
    }

    /// A map from pairs (tests and tools).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut out = ZoneIds::default();
        for (name, id) in pairs {
            out.ids.insert(name.to_owned(), id.to_owned());
        }
        out
    }

    fn insert(&mut self, name: String, id: String) -> Result<(), ZoneMapError> {
        let name = name.trim().to_ascii_lowercase();
        let id = id.trim().to_ascii_lowercase();
        match self.ids.get(&name) {
            Some(first) if *first != id => Err(ZoneMapError::Conflict {
                name,
                first: first.clone(),
                second: id,
            }),
            _ => {
                self.ids.insert(name, id);
                Ok(())
            }
        }
    }

    /// The AZ ID of zone `name`, when the map has it.
    pub fn id_of(&self, name: &str) -> Option<&str> {
        self.ids.get(name).map(String::as_str)
    }

    /// The region of zone `name`, when the map says (DescribeAvailabilityZones output does).
    pub fn region_of(&self, name: &str) -> Option<&str> {
        self.regions.get(name).map(String::as_str)
    }

    /// Zones mapped.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_object_maps_names_to_ids() {
        let z = ZoneIds::parse(r#"{"us-east-1a":"use1-az4","US-EAST-1B":"use1-az6"}"#).unwrap();
        assert_eq!(z.id_of("us-east-1a"), Some("use1-az4"));
        assert_eq!(z.id_of("us-east-1b"), Some("use1-az6"));
        assert_eq!(z.id_of("us-east-1c"), None);
        assert_eq!(z.region_of("us-east-1a"), None);
        assert_eq!(z.len(), 2);
    }

    #[test]
    fn describe_availability_zones_output_is_read() {
        let json = r#"{"AvailabilityZones":[
            {"State":"available","OptInStatus":"opt-in-not-required","Messages":[],"RegionName":"us-east-1",
             "ZoneName":"us-east-1a","ZoneId":"use1-az2","GroupName":"us-east-1","NetworkBorderGroup":"us-east-1",
             "ZoneType":"availability-zone"},
            {"State":"available","RegionName":"us-east-1","ZoneName":"us-east-1b","ZoneId":"use1-az4"}]}"#;
        let z = ZoneIds::parse(json).unwrap();
        assert_eq!(z.id_of("us-east-1a"), Some("use1-az2"));
        assert_eq!(z.id_of("us-east-1b"), Some("use1-az4"));
        assert_eq!(z.region_of("us-east-1b"), Some("us-east-1"));
    }

    #[test]
    fn bad_maps_say_what_is_wrong() {
        assert!(matches!(ZoneIds::parse("[1,2]"), Err(ZoneMapError::Shape)));
        assert!(matches!(
            ZoneIds::parse(r#"{"a":1}"#),
            Err(ZoneMapError::Shape)
        ));
        assert!(matches!(ZoneIds::parse("{}"), Err(ZoneMapError::Empty)));
        assert!(matches!(ZoneIds::parse("nope"), Err(ZoneMapError::Json(_))));
        let json = r#"{"AvailabilityZones":[{"ZoneName":"us-east-1a","ZoneId":"use1-az2"},
                                           {"ZoneName":"us-east-1a","ZoneId":"use1-az3"}]}"#;
        let e = ZoneIds::parse(json).unwrap_err();
        assert!(e.to_string().contains("two AZ IDs"), "{e}");
    }
}
