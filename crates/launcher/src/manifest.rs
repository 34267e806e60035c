//! The `SparkApplication` a launch attempt becomes on Kubernetes: the template, sized, named, labelled,
//! with the driver kept on on-demand capacity and the executors placed on the chosen spot pool.
//!
//! A `nodeSelector` must match every label it lists, and a node carries either Karpenter's capacity
//! label or an EKS managed node group's, not both; so the capacity type goes into a node affinity whose
//! two terms are alternatives, while instance type and zone (well-known labels every node has) stay in
//! the `nodeSelector`.

use serde_json::{Value, json};

use pool_core::event::PoolId;

use crate::launch::{Attempt, Launch};
use crate::size::Pod;
use crate::template::Template;

pub const LABEL_LAUNCH_ID: &str = "pool-selector.io/launch-id";
pub const LABEL_JOB_ID: &str = "pool-selector.io/job-id";
pub const LABEL_POOL_ID: &str = "pool-selector.io/pool-id";
pub const LABEL_ATTEMPT: &str = "pool-selector.io/attempt";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "pool-selector-launcher";

pub const INSTANCE_TYPE_LABEL: &str = "node.kubernetes.io/instance-type";
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
pub const KARPENTER_CAPACITY_LABEL: &str = "karpenter.sh/capacity-type";
pub const EKS_CAPACITY_LABEL: &str = "eks.amazonaws.com/capacityType";

/// Where the kubernetes backend puts things.
#[derive(Debug, Clone)]
pub struct Placement {
    pub namespace: String,
    pub service_account: String,
}

/// Capacity of one kind: Karpenter's value or the EKS node group's, whichever the node carries.
fn capacity_affinity(karpenter: &str, eks: &str) -> Value {
    json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": KARPENTER_CAPACITY_LABEL, "operator": "In", "values": [karpenter]}]},
        {"matchExpressions": [{"key": EKS_CAPACITY_LABEL, "operator": "In", "values": [eks]}]}
    ]}}})
}

/// Label values may not hold every character an id does; ours are ids, pool names and numbers, which
/// fit (letters, digits, `-`, `.`), up to 63 characters.
fn labels(launch: &Launch, attempt: &Attempt) -> Value {
    json!({
        LABEL_LAUNCH_ID: launch.launch_id,
        LABEL_JOB_ID: attempt.job_id,
        LABEL_POOL_ID: attempt.pool_id.as_str(),
        LABEL_ATTEMPT: attempt.attempt.to_string(),
        LABEL_MANAGED_BY: MANAGED_BY,
    })
}

fn merge(target: &mut Value, extra: &Value) {
    if let (Some(t), Some(e)) = (target.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            t.insert(k.clone(), v.clone());
        }
    }
}

fn size_pod(role: &mut Value, pod: Pod) {
    role["cores"] = json!(pod.cores);
    role["memory"] = json!(pod.memory);
}

/// The SparkApplication for `launch`'s current attempt.
pub fn render(template: &Template, launch: &Launch, placement: &Placement) -> Value {
    let attempt = launch.current();
    render_attempt(template, launch, attempt, placement)
}

pub fn render_attempt(
    template: &Template,
    launch: &Launch,
    attempt: &Attempt,
    placement: &Placement,
) -> Value {
    let mut app = template.manifest.clone();
    let labels = labels(launch, attempt);
    let meta = &mut app["metadata"];
    if !meta.is_object() {
        *meta = json!({});
    }
    meta["name"] = json!(attempt.run_name);
    meta["namespace"] = json!(placement.namespace);
    if !meta["labels"].is_object() {
        meta["labels"] = json!({});
    }
    merge(&mut meta["labels"], &labels);

    let spec = &mut app["spec"];
    spec["arguments"] = json!(template.arguments(&launch.arguments));
    // One attempt is one run: retries are the launcher's, on another pool.
    spec["restartPolicy"] = json!({"type": "Never"});
    let preset = launch.size.preset();
    pool_role(&mut spec["driver"], &labels);
    size_pod(&mut spec["driver"], preset.driver);
    spec["driver"]["serviceAccount"] = json!(placement.service_account);
    spec["driver"]["affinity"] = capacity_affinity("on-demand", "ON_DEMAND");

    pool_role(&mut spec["executor"], &labels);
    size_pod(&mut spec["executor"], preset.executor);
    spec["executor"]["instances"] = json!(preset.executors);
    spec["executor"]["nodeSelector"] = executor_selector(&attempt.pool_id);
    spec["executor"]["affinity"] = capacity_affinity("spot", "SPOT");
    app
}

fn pool_role(role: &mut Value, labels: &Value) {
    if !role.is_object() {
        *role = json!({});
    }
    if !role["labels"].is_object() {
        role["labels"] = json!({});
    }
    merge(&mut role["labels"], labels);
}

fn executor_selector(pool: &PoolId) -> Value {
    json!({
        INSTANCE_TYPE_LABEL: pool.instance_type().as_str(),
        ZONE_LABEL: pool.availability_zone().as_str(),
    })
}

/// Every SparkApplication the templates in `folder` give: each template in each size, on `pool`. What
/// `launcher render` prints, for validating the manifests offline against the operator's CRD schema.
pub fn render_samples(
    folder: &std::path::Path,
    pool: &str,
    placement: &Placement,
) -> anyhow::Result<Vec<Value>> {
    let templates = crate::template::Templates::load(folder)?;
    let pool: PoolId = pool
        .parse()
        .map_err(|e: pool_core::event::EventError| anyhow::anyhow!("--pool: {}", e.message))?;
    let defaults = crate::launch::Defaults {
        application: String::new(),
        instance_types: vec![pool.instance_type().clone()],
        max_attempts: 1,
    };
    let mut out = Vec::new();
    for t in templates.iter() {
        for size in crate::size::Size::ALL {
            let req: crate::launch::LaunchRequest = serde_json::from_value(json!({
                "application": t.name, "instance_types": [pool.instance_type().as_str()], "size": size.as_str(),
            }))?;
            let spec = req.parse(|_| true, &defaults)?;
            let now = chrono::Utc::now();
            let claim = crate::launch::Claim::new(now, std::time::Duration::from_secs(30));
            let launch = crate::launch::Launch::new("render", spec, pool.clone(), now, claim);
            out.push(render(t, &launch, placement));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::{Launch, LaunchRequest};
    use std::path::Path;

    const TEMPLATE: &str = "apiVersion: sparkoperator.k8s.io/v1beta2\nkind: SparkApplication\nmetadata:\n  name: astronauts\n  labels:\n    team: data\nspec:\n  type: Python\n  mode: cluster\n  image: example/spark:1\n  mainApplicationFile: local:///opt/spark/jobs/astronauts.py\n  sparkVersion: 3.5.3\n  driver:\n    cores: 9\n    nodeSelector:\n      disk: ssd\n  executor:\n    instances: 99\n";

    fn launch(size: &str) -> (Template, Launch) {
        let t = Template::parse("astronauts", Path::new("astronauts.yaml"), TEMPLATE).unwrap();
        let req: LaunchRequest = serde_json::from_value(json!({
            "application": "astronauts", "instance_types": ["c6a.xlarge"], "size": size,
            "arguments": ["--craft", "ISS"]
        }))
        .unwrap();
        let defaults =
            crate::launch::Defaults::new("astronauts", &["c6a.xlarge".into()], 3).unwrap();
        let spec = req.parse(|_| true, &defaults).unwrap();
        let pool: PoolId = "pool-c6a.xlarge-us-east-1b".parse().unwrap();
        let now = chrono::Utc::now();
        let claim = crate::launch::Claim::new(now, std::time::Duration::from_secs(30));
        (t, Launch::new("alice", spec, pool, now, claim))
    }

    fn placement() -> Placement {
        Placement {
            namespace: "spark-jobs".into(),
            service_account: "spark".into(),
        }
    }

    #[test]
    fn executors_go_to_the_pool_on_spot_and_the_driver_on_demand() {
        let (t, l) = launch("medium");
        let app = render(&t, &l, &placement());
        let spec = &app["spec"];
        assert_eq!(
            spec["executor"]["nodeSelector"][INSTANCE_TYPE_LABEL],
            "c6a.xlarge"
        );
        assert_eq!(spec["executor"]["nodeSelector"][ZONE_LABEL], "us-east-1b");
        let terms = &spec["executor"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
        assert_eq!(terms[0]["matchExpressions"][0]["values"][0], "spot");
        assert_eq!(terms[1]["matchExpressions"][0]["values"][0], "SPOT");
        let dterms = &spec["driver"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
        assert_eq!(dterms[0]["matchExpressions"][0]["values"][0], "on-demand");
        assert_eq!(dterms[1]["matchExpressions"][0]["values"][0], "ON_DEMAND");
        // The template's own driver selector is kept; the size replaces its resources.
        assert_eq!(spec["driver"]["nodeSelector"]["disk"], "ssd");
        assert_eq!(spec["driver"]["cores"], 1);
        assert_eq!(spec["executor"]["instances"], 3);
        assert_eq!(spec["executor"]["cores"], 2);
        assert_eq!(spec["arguments"], json!(["--craft", "ISS"]));
        assert_eq!(spec["restartPolicy"]["type"], "Never");
    }

    #[test]
    fn labels_carry_the_ids_everywhere() {
        let (t, l) = launch("small");
        let app = render(&t, &l, &placement());
        let a = l.current();
        for labels in [
            &app["metadata"]["labels"],
            &app["spec"]["driver"]["labels"],
            &app["spec"]["executor"]["labels"],
        ] {
            assert_eq!(labels[LABEL_LAUNCH_ID], l.launch_id.as_str());
            assert_eq!(labels[LABEL_JOB_ID], a.job_id.as_str());
            assert_eq!(labels[LABEL_POOL_ID], "pool-c6a.xlarge-us-east-1b");
            assert_eq!(labels[LABEL_ATTEMPT], "1");
            assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY);
        }
        assert_eq!(app["metadata"]["labels"]["team"], "data");
        assert_eq!(app["metadata"]["name"], a.run_name.as_str());
        assert_eq!(app["metadata"]["namespace"], "spark-jobs");
        for v in app["metadata"]["labels"].as_object().unwrap().values() {
            let v = v.as_str().unwrap();
            assert!(
                v.len() <= 63
                    && v.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)),
                "{v}"
            );
        }
    }
}
