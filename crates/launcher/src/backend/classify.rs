//! How a `SparkApplication` ended, from what the Spark Operator and the pods report. Pure: the
//! kubernetes backend passes the object's status and its pods as JSON.
//!
//! The operator reports `status.applicationState.state`; it cannot say *why* a run failed. The pods
//! can: a spot reclaim shuts the node down (the kubelet marks pods `DisruptionTarget` /
//! `TerminationByKubelet` and `status.reason: Terminated`/`NodeShutdown`), or the node disappears (the
//! taint manager or the pod garbage collector deletes its pods: `DeletionByTaintManager`,
//! `DeletionByPodGC`, `NodeLost`), or Karpenter drains it on the interruption notice (the eviction API:
//! `EvictionByEvictionAPI`). A failed application with any such pod was lost to a spot termination.
//! An application that completed despite lost executors (Spark replaced them) succeeded.

use serde_json::Value;

use pool_core::event::Outcome;

use super::RunStatus;

pub const EXECUTION_ERROR: &str = "SPARK_EXECUTION_ERROR";
pub const SUBMISSION_FAILED: &str = "SUBMISSION_FAILED";

const DISRUPTION_REASONS: [&str; 4] = [
    "TerminationByKubelet",
    "DeletionByTaintManager",
    "DeletionByPodGC",
    "EvictionByEvictionAPI",
];
const NODE_GONE_REASONS: [&str; 3] = ["NodeShutdown", "Terminated", "NodeLost"];

/// Whether a pod was taken by its node going away.
pub fn lost_with_its_node(pod: &Value) -> bool {
    let status = &pod["status"];
    if status["reason"]
        .as_str()
        .is_some_and(|r| NODE_GONE_REASONS.contains(&r))
    {
        return true;
    }
    status["conditions"].as_array().is_some_and(|conditions| {
        conditions.iter().any(|c| {
            c["type"] == "DisruptionTarget"
                && c["status"] == "True"
                && c["reason"]
                    .as_str()
                    .is_some_and(|r| DISRUPTION_REASONS.contains(&r))
        })
    })
}

/// The run's status from the application's state and its pods.
pub fn classify(application: &Value, pods: &[Value]) -> RunStatus {
    let state = application["status"]["applicationState"]["state"]
        .as_str()
        .unwrap_or("");
    match state {
        "COMPLETED" => RunStatus::Finished(Outcome::Succeeded),
        "FAILED" | "SUBMISSION_FAILED" if pods.iter().any(lost_with_its_node) => {
            RunStatus::Finished(Outcome::SpotTermination)
        }
        "FAILED" => RunStatus::Finished(Outcome::OtherFailure(EXECUTION_ERROR.into())),
        "SUBMISSION_FAILED" => RunStatus::Finished(Outcome::OtherFailure(SUBMISSION_FAILED.into())),
        "RUNNING" | "SUCCEEDING" | "FAILING" | "UNKNOWN" => RunStatus::Running,
        // "", NEW, SUBMITTED, PENDING_RERUN, INVALIDATING.
        _ => RunStatus::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(state: &str) -> Value {
        json!({"status": {"applicationState": {"state": state}}})
    }

    fn pod(reason: Option<&str>, condition: Option<&str>) -> Value {
        let mut status = json!({"phase": "Failed"});
        if let Some(r) = reason {
            status["reason"] = json!(r);
        }
        if let Some(c) = condition {
            status["conditions"] = json!([{"type": "Ready", "status": "False"},
                {"type": "DisruptionTarget", "status": "True", "reason": c}]);
        }
        json!({"metadata": {"labels": {"spark-role": "executor"}}, "status": status})
    }

    #[test]
    fn states_map_to_run_statuses() {
        for (s, want) in [
            ("", RunStatus::Pending),
            ("NEW", RunStatus::Pending),
            ("SUBMITTED", RunStatus::Pending),
            ("PENDING_RERUN", RunStatus::Pending),
            ("INVALIDATING", RunStatus::Pending),
            ("RUNNING", RunStatus::Running),
            ("SUCCEEDING", RunStatus::Running),
            ("FAILING", RunStatus::Running),
            ("UNKNOWN", RunStatus::Running),
            ("COMPLETED", RunStatus::Finished(Outcome::Succeeded)),
            (
                "FAILED",
                RunStatus::Finished(Outcome::OtherFailure(EXECUTION_ERROR.into())),
            ),
            (
                "SUBMISSION_FAILED",
                RunStatus::Finished(Outcome::OtherFailure(SUBMISSION_FAILED.into())),
            ),
        ] {
            assert_eq!(classify(&app(s), &[]), want, "{s}");
        }
        assert_eq!(classify(&json!({}), &[]), RunStatus::Pending);
    }

    #[test]
    fn every_node_loss_signal_is_a_spot_termination() {
        let lost: Vec<Value> = NODE_GONE_REASONS
            .iter()
            .map(|r| pod(Some(r), None))
            .chain(DISRUPTION_REASONS.iter().map(|c| pod(None, Some(c))))
            .collect();
        for p in &lost {
            assert!(lost_with_its_node(p), "{p}");
            let pods = [pod(None, None), p.clone()];
            assert_eq!(
                classify(&app("FAILED"), &pods),
                RunStatus::Finished(Outcome::SpotTermination),
                "{p}"
            );
            // Completed anyway: Spark replaced the executor; the job did not suffer.
            assert_eq!(
                classify(&app("COMPLETED"), &pods),
                RunStatus::Finished(Outcome::Succeeded)
            );
            assert_eq!(classify(&app("RUNNING"), &pods), RunStatus::Running);
        }
    }

    #[test]
    fn other_pod_failures_are_not_spot() {
        for p in [
            pod(Some("Evicted"), None),
            pod(Some("OOMKilled"), None),
            pod(None, Some("PreemptionByScheduler")),
            json!({"status": {"conditions": [{"type": "DisruptionTarget", "status": "False", "reason": "TerminationByKubelet"}]}}),
            json!({}),
        ] {
            assert!(!lost_with_its_node(&p), "{p}");
            assert_eq!(
                classify(&app("FAILED"), &[p]),
                RunStatus::Finished(Outcome::OtherFailure(EXECUTION_ERROR.into()))
            );
        }
    }
}
