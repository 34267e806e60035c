//! The kubernetes backend: one `SparkApplication` per attempt, created, read and deleted through the
//! Kubernetes API with kube-rs. The objects themselves are the runs' durable state: a restarted launcher
//! finds each attempt's application by its name.
//!
//! It needs a Role allowing `sparkapplications` (get, list, watch, create, delete) and reading `pods` in
//! `SPARK_NAMESPACE` (k8s/base/launcher.yaml, the Helm chart's templates/launcher.yaml). Each poll reads
//! one object, and lists its pods only once it failed, to tell a spot reclaim from another failure.

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use serde_json::Value;

use super::classify::classify;
use super::{Backend, BackendError, Run, RunStatus};
use crate::manifest::{self, Placement};

/// The label the Spark Operator puts on an application's driver and executor pods.
const APP_NAME_LABEL: &str = "sparkoperator.k8s.io/app-name";

pub struct KubernetesBackend {
    client: Client,
    placement: Placement,
    resource: ApiResource,
}

fn api_error(e: kube::Error, what: &str) -> BackendError {
    match e {
        kube::Error::Api(s) if (400..500).contains(&s.code) && s.code != 429 => {
            BackendError::Refused(format!("{what}: {} ({})", s.message, s.code))
        }
        other => BackendError::Unavailable(format!("{what}: {other}")),
    }
}

impl KubernetesBackend {
    /// Connect with the in-cluster configuration, or KUBECONFIG outside a cluster.
    pub async fn connect(placement: Placement) -> Result<Self, BackendError> {
        pool_core::tls::install_crypto_provider();
        let client = Client::try_default().await.map_err(|e| {
            BackendError::Unavailable(format!(
                "BACKEND=kubernetes needs a cluster: no in-cluster configuration and no usable KUBECONFIG ({e})"
            ))
        })?;
        Ok(Self::new(client, placement))
    }

    pub fn new(client: Client, placement: Placement) -> Self {
        let gvk = GroupVersionKind::gvk("sparkoperator.k8s.io", "v1beta2", "SparkApplication");
        Self {
            client,
            placement,
            resource: ApiResource::from_gvk_with_plural(&gvk, "sparkapplications"),
        }
    }

    fn applications(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            &self.placement.namespace,
            &self.resource,
        )
    }
}

#[async_trait]
impl Backend for KubernetesBackend {
    async fn submit(&self, run: Run<'_>) -> Result<(), BackendError> {
        let manifest =
            manifest::render_attempt(run.template, run.launch, run.attempt, &self.placement);
        let object: DynamicObject = serde_json::from_value(manifest).map_err(|e| {
            BackendError::Refused(format!(
                "the rendered SparkApplication is not an object: {e}"
            ))
        })?;
        match self
            .applications()
            .create(&PostParams::default(), &object)
            .await
        {
            Ok(_) => Ok(()),
            // Created before a restart: the same attempt, already running.
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(api_error(e, "creating the SparkApplication")),
        }
    }

    async fn poll(&self, run: Run<'_>) -> Result<RunStatus, BackendError> {
        let name = &run.attempt.run_name;
        let Some(app) = self
            .applications()
            .get_opt(name)
            .await
            .map_err(|e| api_error(e, "reading the SparkApplication"))?
        else {
            return Ok(RunStatus::NotFound);
        };
        let app = serde_json::to_value(&app).unwrap_or(Value::Null);
        let status = classify(&app, &[]);
        if !matches!(status, RunStatus::Finished(ref o) if !matches!(o, pool_core::event::Outcome::Succeeded))
        {
            return Ok(status);
        }
        // Failed: the pods say whether their nodes went away.
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.placement.namespace);
        let list = pods
            .list(&ListParams::default().labels(&format!("{APP_NAME_LABEL}={name}")))
            .await
            .map_err(|e| api_error(e, "listing the application's pods"))?;
        let pods: Vec<Value> = list
            .items
            .iter()
            .filter_map(|p| serde_json::to_value(p).ok())
            .collect();
        Ok(classify(&app, &pods))
    }

    async fn cancel(&self, run: Run<'_>) -> Result<(), BackendError> {
        match self
            .applications()
            .delete(&run.attempt.run_name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(api_error(e, "deleting the SparkApplication")),
        }
    }

    async fn ready(&self) -> Result<(), BackendError> {
        self.applications()
            .list(&ListParams::default().limit(1))
            .await
            .map(|_| ())
            .map_err(|e| api_error(e, "listing SparkApplications"))
    }

    fn name(&self) -> &'static str {
        "kubernetes"
    }
}
