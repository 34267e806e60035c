//! Launch templates: `<name>.yaml` files in `LAUNCH_TEMPLATES`, each a Spark Operator `SparkApplication`
//! (`sparkoperator.k8s.io/v1beta2`), with the job file it names beside it for the local backend.
//!
//! Loaded once at start: a template that does not parse stops the launcher with its file named,
//! rather than failing the first launch that uses it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

pub const API_VERSION: &str = "sparkoperator.k8s.io/v1beta2";
pub const KIND: &str = "SparkApplication";

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read the templates folder {0}: {1} (set LAUNCH_TEMPLATES)")]
    Folder(PathBuf, std::io::Error),
    #[error("template {0}: {1}")]
    Invalid(PathBuf, String),
    #[error("no template (*.yaml) in {0} (set LAUNCH_TEMPLATES)")]
    Empty(PathBuf),
}

/// One template.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    /// The SparkApplication, as JSON.
    pub manifest: Value,
    /// The job file a local run executes: the template's folder + the file name of
    /// `spec.mainApplicationFile` (`local:///opt/spark/jobs/astronauts.py` → `<folder>/astronauts.py`).
    pub local_file: PathBuf,
}

/// What `GET /applications` shows of a template.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Application {
    pub name: String,
    /// `Python`, `Scala`, `Java` or `R`.
    #[serde(rename = "type")]
    pub kind: String,
    pub main_application_file: String,
    pub spark_version: String,
}

impl Template {
    fn spec_str(&self, key: &str) -> String {
        self.manifest["spec"][key]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The arguments a launch passes: its own, or the template's default ones when it gives none.
    pub fn arguments(&self, requested: &[String]) -> Vec<String> {
        if !requested.is_empty() {
            return requested.to_vec();
        }
        self.manifest["spec"]["arguments"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn application(&self) -> Application {
        Application {
            name: self.name.clone(),
            kind: self.spec_str("type"),
            main_application_file: self.spec_str("mainApplicationFile"),
            spark_version: self.spec_str("sparkVersion"),
        }
    }

    /// Parse one template file.
    pub fn parse(name: &str, path: &Path, text: &str) -> Result<Self, TemplateError> {
        let invalid = |m: String| TemplateError::Invalid(path.to_owned(), m);
        let manifest: Value =
            serde_yaml_ng::from_str(text).map_err(|e| invalid(format!("not YAML: {e}")))?;
        if manifest["apiVersion"] != API_VERSION || manifest["kind"] != KIND {
            return Err(invalid(format!(
                "must be apiVersion {API_VERSION}, kind {KIND}"
            )));
        }
        let main = manifest["spec"]["mainApplicationFile"]
            .as_str()
            .ok_or_else(|| invalid("spec.mainApplicationFile is missing".into()))?;
        let file_name = main
            .rsplit('/')
            .next()
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| invalid(format!("spec.mainApplicationFile {main:?} names no file")))?;
        let folder = path.parent().unwrap_or(Path::new("."));
        Ok(Template {
            name: name.to_owned(),
            manifest,
            local_file: folder.join(file_name),
        })
    }
}

/// Every template, by name.
#[derive(Debug, Clone, Default)]
pub struct Templates(BTreeMap<String, Template>);

impl Templates {
    pub fn load(folder: &Path) -> Result<Self, TemplateError> {
        let entries =
            std::fs::read_dir(folder).map_err(|e| TemplateError::Folder(folder.to_owned(), e))?;
        let mut out = BTreeMap::new();
        for entry in entries {
            let path = entry
                .map_err(|e| TemplateError::Folder(folder.to_owned(), e))?
                .path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let text = std::fs::read_to_string(&path)
                .map_err(|e| TemplateError::Invalid(path.clone(), e.to_string()))?;
            out.insert(name.to_owned(), Template::parse(name, &path, &text)?);
        }
        if out.is_empty() {
            return Err(TemplateError::Empty(folder.to_owned()));
        }
        Ok(Templates(out))
    }

    pub fn get(&self, name: &str) -> Option<&Template> {
        self.0.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Template> {
        self.0.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: sparkoperator.k8s.io/v1beta2\nkind: SparkApplication\nmetadata:\n  name: x\nspec:\n  type: Python\n  mainApplicationFile: local:///opt/spark/jobs/job.py\n  sparkVersion: 3.5.3\n";

    #[test]
    fn a_template_names_its_local_file() {
        let t = Template::parse("job", Path::new("/t/job.yaml"), GOOD).unwrap();
        assert_eq!(t.local_file, Path::new("/t/job.py"));
        let a = t.application();
        assert_eq!(
            (a.kind.as_str(), a.spark_version.as_str()),
            ("Python", "3.5.3")
        );
    }

    #[test]
    fn bad_templates_say_why() {
        for (text, want) in [
            ("{", "not YAML"),
            ("apiVersion: v1\nkind: Pod\n", "must be apiVersion"),
            (
                "apiVersion: sparkoperator.k8s.io/v1beta2\nkind: SparkApplication\nspec: {}\n",
                "mainApplicationFile",
            ),
        ] {
            let e = Template::parse("x", Path::new("x.yaml"), text)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
    }
}
