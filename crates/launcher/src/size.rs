//! Size presets, from seed 004's sizing rules ("small < 1 GB of data, medium 1–10 GB, large > 10 GB").

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    Small,
    Medium,
    Large,
}

/// Cores and memory of one pod, in the Spark Operator's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pod {
    pub cores: u32,
    pub memory: &'static str,
}

/// A size's driver and executors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub driver: Pod,
    pub executor: Pod,
    pub executors: u32,
}

impl Size {
    pub const ALL: [Size; 3] = [Size::Small, Size::Medium, Size::Large];

    pub fn as_str(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Medium => "medium",
            Size::Large => "large",
        }
    }

    /// The seed's ranges, at a point inside each: small 1 × (1 core, 512m); medium 3 × (2 cores, 2g);
    /// large 10 × (4 cores, 6g). The driver coordinates only, so it stays small.
    pub fn preset(self) -> Preset {
        match self {
            Size::Small => Preset {
                driver: Pod {
                    cores: 1,
                    memory: "512m",
                },
                executor: Pod {
                    cores: 1,
                    memory: "512m",
                },
                executors: 1,
            },
            Size::Medium => Preset {
                driver: Pod {
                    cores: 1,
                    memory: "1g",
                },
                executor: Pod {
                    cores: 2,
                    memory: "2g",
                },
                executors: 3,
            },
            Size::Large => Preset {
                driver: Pod {
                    cores: 2,
                    memory: "2g",
                },
                executor: Pod {
                    cores: 4,
                    memory: "6g",
                },
                executors: 10,
            },
        }
    }
}

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Size::ALL
            .into_iter()
            .find(|z| z.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("size: {s:?} is not one of small, medium, large"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_grow() {
        for w in Size::ALL.windows(2) {
            let (a, b) = (w[0].preset(), w[1].preset());
            assert!(a.executors < b.executors && a.executor.cores < b.executor.cores);
            assert!(a.driver.cores <= b.driver.cores);
        }
        assert_eq!("MEDIUM".parse::<Size>(), Ok(Size::Medium));
        assert!(
            "xl".parse::<Size>()
                .unwrap_err()
                .contains("small, medium, large")
        );
    }
}
