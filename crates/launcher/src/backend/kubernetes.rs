//! The kubernetes backend: one `SparkApplication` per attempt, created, read and deleted through the
//! Kubernetes API with kube-rs. The objects themselves are the runs' durable state: a restarted launcher
//! finds each attempt's application by its name.
//!
//! It needs a Role allowing `sparkapplications` get, list, create and delete, and listing `pods`, in
//! `SPARK_NAMESPACE` (k8s/base/launcher-rbac.yaml, the Helm chart's templates/launcher.yaml): exactly the
//! calls of [`KubeCluster`]. Each poll reads one object, and lists its pods only once it failed, to tell
//! a spot reclaim from another failure.
//!
//! What the backend decides (adopt or refuse an existing object, how a failed run ended, how long an
//! object may live before the operator removes it) is written against the small [`Cluster`] seam, so
//! its tests drive it through the [`Backend`] trait with a fake cluster that records every call: no
//! Kubernetes API server can run on the machines that test it.

use std::time::Duration;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, PostParams,
};
use serde_json::Value;

use super::classify::classify;
use super::{Backend, BackendError, Run, RunStatus};
use crate::manifest::{self, LABEL_JOB_ID, Placement};

/// The label the Spark Operator puts on an application's driver and executor pods.
const APP_NAME_LABEL: &str = "sparkoperator.k8s.io/app-name";

/// A refusal of the API server: its HTTP code (none when it could not be reached) and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiFailure {
    pub code: Option<u16>,
    pub message: String,
}

/// What creating an object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    Created,
    /// An object of that name exists (409).
    Exists,
}

/// The calls the backend makes on the cluster: SparkApplications by name in `SPARK_NAMESPACE`, and an
/// application's pods.
#[async_trait]
pub trait Cluster: Send + Sync {
    async fn create(&self, application: Value) -> Result<Creation, ApiFailure>;
    async fn get(&self, name: &str) -> Result<Option<Value>, ApiFailure>;
    /// `false`: there was no such object.
    async fn delete(&self, name: &str) -> Result<bool, ApiFailure>;
    async fn pods(&self, application: &str) -> Result<Vec<Value>, ApiFailure>;
    /// The API answers and SparkApplications can be listed.
    async fn probe(&self) -> Result<(), ApiFailure>;
}

/// The cluster through kube-rs.
pub struct KubeCluster {
    client: Client,
    namespace: String,
    resource: ApiResource,
}

fn failure(e: kube::Error) -> ApiFailure {
    match e {
        kube::Error::Api(s) => ApiFailure {
            code: Some(s.code),
            message: s.message,
        },
        other => ApiFailure {
            code: None,
            message: other.to_string(),
        },
    }
}

impl KubeCluster {
    /// Connect with the in-cluster configuration, or KUBECONFIG outside a cluster.
    pub async fn connect(namespace: &str) -> Result<Self, BackendError> {
        pool_service::tls::install_crypto_provider();
        let client = Client::try_default().await.map_err(|e| {
            BackendError::Unavailable(format!(
                "BACKEND=kubernetes needs a cluster: no in-cluster configuration and no usable KUBECONFIG ({e})"
            ))
        })?;
        Ok(Self::new(client, namespace))
    }

    pub fn new(client: Client, namespace: &str) -> Self {
        let gvk = GroupVersionKind::gvk("sparkoperator.k8s.io", "v1beta2", "SparkApplication");
        Self {
            client,
            namespace: namespace.to_owned(),
            resource: ApiResource::from_gvk_with_plural(&gvk, "sparkapplications"),
        }
    }

    fn applications(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &self.resource)
    }
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn create(&self, application: Value) -> Result<Creation, ApiFailure> {
        let object: DynamicObject =
            serde_json::from_value(application).map_err(|e| ApiFailure {
                code: Some(422),
                message: format!("the rendered SparkApplication is not an object: {e}"),
            })?;
        match self
            .applications()
            .create(&PostParams::default(), &object)
            .await
        {
            Ok(_) => Ok(Creation::Created),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Creation::Exists),
            Err(e) => Err(failure(e)),
        }
    }

    async fn get(&self, name: &str) -> Result<Option<Value>, ApiFailure> {
        let app = self.applications().get_opt(name).await.map_err(failure)?;
        Ok(app.map(|a| serde_json::to_value(&a).unwrap_or(Value::Null)))
    }

    async fn delete(&self, name: &str) -> Result<bool, ApiFailure> {
        match self
            .applications()
            .delete(name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(failure(e)),
        }
    }

    async fn pods(&self, application: &str) -> Result<Vec<Value>, ApiFailure> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let list = pods
            .list(&ListParams::default().labels(&format!("{APP_NAME_LABEL}={application}")))
            .await
            .map_err(failure)?;
        Ok(list
            .items
            .iter()
            .filter_map(|p| serde_json::to_value(p).ok())
            .collect())
    }

    async fn probe(&self) -> Result<(), ApiFailure> {
        self.applications()
            .list(&ListParams::default().limit(1))
            .await
            .map(|_| ())
            .map_err(failure)
    }
}

/// A refusal that retrying cannot fix (a 4xx other than 429) is `Refused`; anything else waits for
/// the next pass.
fn backend_error(f: ApiFailure, what: &str) -> BackendError {
    match f.code {
        Some(c) if (400..500).contains(&c) && c != 429 => {
            BackendError::Refused(format!("{what}: {} ({c})", f.message))
        }
        _ => BackendError::Unavailable(format!("{what}: {}", f.message)),
    }
}

/// The job id an application carries (the attempt it was created for).
fn job_id_of(application: &Value) -> Option<&str> {
    application["metadata"]["labels"][LABEL_JOB_ID].as_str()
}

pub struct KubernetesBackend<C: Cluster = KubeCluster> {
    cluster: C,
    placement: Placement,
}

impl KubernetesBackend<KubeCluster> {
    /// The backend on the cluster kube-rs finds (in-cluster, or KUBECONFIG).
    pub async fn connect(placement: Placement) -> Result<Self, BackendError> {
        let cluster = KubeCluster::connect(&placement.namespace).await?;
        Ok(Self::new(cluster, placement))
    }
}

impl<C: Cluster> KubernetesBackend<C> {
    pub fn new(cluster: C, placement: Placement) -> Self {
        Self { cluster, placement }
    }

    pub fn cluster(&self) -> &C {
        &self.cluster
    }
}

#[async_trait]
impl<C: Cluster> Backend for KubernetesBackend<C> {
    /// Create the attempt's application. One that exists already is adopted when it is this attempt's
    /// (created before a restart: the same run), and refused when it is not (a name taken by another
    /// object: submitting would track a run that is not ours).
    async fn submit(&self, run: Run<'_>) -> Result<(), BackendError> {
        let manifest =
            manifest::render_attempt(run.template, run.launch, run.attempt, &self.placement);
        let name = &run.attempt.run_name;
        match self
            .cluster
            .create(manifest)
            .await
            .map_err(|f| backend_error(f, "creating the SparkApplication"))?
        {
            Creation::Created => Ok(()),
            Creation::Exists => {
                let existing = self
                    .cluster
                    .get(name)
                    .await
                    .map_err(|f| backend_error(f, "reading the SparkApplication"))?;
                match existing {
                    Some(app) if job_id_of(&app) == Some(run.attempt.job_id.as_str()) => {
                        tracing::info!(run = %name, "SparkApplication exists already: adopted");
                        Ok(())
                    }
                    Some(app) => Err(BackendError::Refused(format!(
                        "a SparkApplication named {name} exists that is not this attempt's (job id {:?}, expected {})",
                        job_id_of(&app).unwrap_or(""),
                        run.attempt.job_id
                    ))),
                    // Deleted between the two calls: the next pass decides again.
                    None => Err(BackendError::Unavailable(format!(
                        "the SparkApplication {name} went away while it was being created"
                    ))),
                }
            }
        }
    }

    async fn poll(&self, run: Run<'_>) -> Result<RunStatus, BackendError> {
        let name = &run.attempt.run_name;
        let Some(app) = self
            .cluster
            .get(name)
            .await
            .map_err(|f| backend_error(f, "reading the SparkApplication"))?
        else {
            return Ok(RunStatus::NotFound);
        };
        let status = classify(&app, &[]);
        if !matches!(status, RunStatus::Finished(ref o) if !matches!(o, pool_core::event::Outcome::Succeeded))
        {
            return Ok(status);
        }
        // Failed: the pods say whether their nodes went away.
        let pods = self
            .cluster
            .pods(name)
            .await
            .map_err(|f| backend_error(f, "listing the application's pods"))?;
        Ok(classify(&app, &pods))
    }

    async fn cancel(&self, run: Run<'_>) -> Result<(), BackendError> {
        self.cluster
            .delete(&run.attempt.run_name)
            .await
            .map(|_| ())
            .map_err(|f| backend_error(f, "deleting the SparkApplication"))
    }

    async fn ready(&self) -> Result<(), BackendError> {
        self.cluster
            .probe()
            .await
            .map_err(|f| backend_error(f, "listing SparkApplications"))
    }

    fn name(&self) -> &'static str {
        "kubernetes"
    }

    /// The Spark Operator deletes an application `spec.timeToLiveSeconds` after it ended.
    fn removal_horizon(&self, run: Run<'_>) -> Option<Duration> {
        run.template.manifest["spec"]["timeToLiveSeconds"]
            .as_u64()
            .map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::launch::{Claim, Defaults, Launch, LaunchRequest};
    use crate::template::Template;
    use pool_core::event::Outcome;

    /// A cluster in memory: SparkApplications by name, each application's pods, and every call.
    #[derive(Default)]
    struct FakeCluster {
        objects: Mutex<BTreeMap<String, Value>>,
        pods: Mutex<BTreeMap<String, Vec<Value>>>,
        calls: Mutex<Vec<String>>,
        unreachable: Mutex<bool>,
    }

    impl FakeCluster {
        fn record(&self, call: String) -> Result<(), ApiFailure> {
            self.calls.lock().unwrap().push(call);
            if *self.unreachable.lock().unwrap() {
                return Err(ApiFailure {
                    code: None,
                    message: "connection refused".into(),
                });
            }
            Ok(())
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
        fn set_state(&self, name: &str, state: &str) {
            let mut objects = self.objects.lock().unwrap();
            let app = objects.get_mut(name).expect("the application exists");
            app["status"] = json!({"applicationState": {"state": state}});
        }
    }

    #[async_trait]
    impl Cluster for FakeCluster {
        async fn create(&self, application: Value) -> Result<Creation, ApiFailure> {
            let name = application["metadata"]["name"].as_str().unwrap().to_owned();
            self.record(format!("create {name}"))?;
            let mut objects = self.objects.lock().unwrap();
            if objects.contains_key(&name) {
                return Ok(Creation::Exists);
            }
            objects.insert(name, application);
            Ok(Creation::Created)
        }
        async fn get(&self, name: &str) -> Result<Option<Value>, ApiFailure> {
            self.record(format!("get {name}"))?;
            Ok(self.objects.lock().unwrap().get(name).cloned())
        }
        async fn delete(&self, name: &str) -> Result<bool, ApiFailure> {
            self.record(format!("delete {name}"))?;
            Ok(self.objects.lock().unwrap().remove(name).is_some())
        }
        async fn pods(&self, application: &str) -> Result<Vec<Value>, ApiFailure> {
            self.record(format!("pods {application}"))?;
            Ok(self
                .pods
                .lock()
                .unwrap()
                .get(application)
                .cloned()
                .unwrap_or_default())
        }
        async fn probe(&self) -> Result<(), ApiFailure> {
            self.record("probe".into())
        }
    }

    const TEMPLATE: &str = "apiVersion: sparkoperator.k8s.io/v1beta2\nkind: SparkApplication\nmetadata:\n  name: astronauts\nspec:\n  type: Python\n  mainApplicationFile: local:///opt/spark/jobs/astronauts.py\n  timeToLiveSeconds: 3600\n";

    fn fixture() -> (KubernetesBackend<FakeCluster>, Template, Launch) {
        let template =
            Template::parse("astronauts", Path::new("astronauts.yaml"), TEMPLATE).unwrap();
        let defaults = Defaults::new("astronauts", &["c6a.xlarge".into()], 3).unwrap();
        let spec = LaunchRequest::default().parse(|_| true, &defaults).unwrap();
        let now = chrono::Utc::now();
        let launch = Launch::new(
            "alice",
            spec,
            "pool-c6a.xlarge-us-east-1a".parse().unwrap(),
            now,
            Claim::new(now, Duration::from_secs(30)),
        );
        let backend = KubernetesBackend::new(
            FakeCluster::default(),
            Placement {
                namespace: "spark-jobs".into(),
                service_account: "spark-driver".into(),
            },
        );
        (backend, template, launch)
    }

    fn run<'a>(t: &'a Template, l: &'a Launch) -> Run<'a> {
        Run {
            launch: l,
            attempt: l.current(),
            template: t,
        }
    }

    #[tokio::test]
    async fn submit_creates_once_and_adopts_its_own_object() {
        let (b, t, l) = fixture();
        let name = l.current().run_name.clone();
        b.submit(run(&t, &l)).await.unwrap();
        // Submitted again (a restart between create and save): the object is this attempt's, adopted.
        b.submit(run(&t, &l)).await.unwrap();
        assert_eq!(
            b.cluster().calls(),
            [
                format!("create {name}"),
                format!("create {name}"),
                format!("get {name}")
            ]
        );
        let created = b.cluster().objects.lock().unwrap()[&name].clone();
        assert_eq!(
            created["metadata"]["labels"][LABEL_JOB_ID],
            l.current().job_id.as_str()
        );
        assert_eq!(created["spec"]["driver"]["serviceAccount"], "spark-driver");
    }

    #[tokio::test]
    async fn an_object_of_another_attempt_under_the_name_is_refused() {
        let (b, t, l) = fixture();
        let name = l.current().run_name.clone();
        b.cluster().objects.lock().unwrap().insert(
            name.clone(),
            json!({"metadata": {"name": name, "labels": {LABEL_JOB_ID: "someone-else"}}}),
        );
        match b.submit(run(&t, &l)).await {
            Err(BackendError::Refused(m)) => assert!(m.contains("not this attempt's"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn polls_follow_the_application_and_its_pods() {
        let (b, t, l) = fixture();
        let name = l.current().run_name.clone();
        assert_eq!(b.poll(run(&t, &l)).await.unwrap(), RunStatus::NotFound);
        b.submit(run(&t, &l)).await.unwrap();
        assert_eq!(b.poll(run(&t, &l)).await.unwrap(), RunStatus::Pending);
        b.cluster().set_state(&name, "RUNNING");
        assert_eq!(b.poll(run(&t, &l)).await.unwrap(), RunStatus::Running);
        b.cluster().set_state(&name, "FAILED");
        b.cluster().pods.lock().unwrap().insert(
            name.clone(),
            vec![json!({"status": {"phase": "Failed", "reason": "NodeShutdown"}})],
        );
        assert_eq!(
            b.poll(run(&t, &l)).await.unwrap(),
            RunStatus::Finished(Outcome::SpotTermination)
        );
        assert!(b.cluster().calls().contains(&format!("pods {name}")));
        // Removed by its TTL: gone, and the backend says how soon that can happen.
        b.cluster().objects.lock().unwrap().remove(&name);
        assert_eq!(b.poll(run(&t, &l)).await.unwrap(), RunStatus::NotFound);
        assert_eq!(
            b.removal_horizon(run(&t, &l)),
            Some(Duration::from_secs(3600))
        );
    }

    #[tokio::test]
    async fn cancel_deletes_and_a_missing_object_is_fine() {
        let (b, t, l) = fixture();
        let name = l.current().run_name.clone();
        b.submit(run(&t, &l)).await.unwrap();
        b.cancel(run(&t, &l)).await.unwrap();
        b.cancel(run(&t, &l)).await.unwrap();
        assert!(b.cluster().objects.lock().unwrap().is_empty());
        assert_eq!(
            b.cluster().calls(),
            [
                format!("create {name}"),
                format!("delete {name}"),
                format!("delete {name}")
            ]
        );
    }

    #[tokio::test]
    async fn an_unreachable_cluster_is_retried_a_refusal_is_not() {
        let (b, t, l) = fixture();
        *b.cluster().unreachable.lock().unwrap() = true;
        assert!(matches!(
            b.submit(run(&t, &l)).await,
            Err(BackendError::Unavailable(_))
        ));
        assert!(matches!(b.ready().await, Err(BackendError::Unavailable(_))));
        for (code, refused) in [(403, true), (422, true), (429, false), (500, false)] {
            let e = backend_error(
                ApiFailure {
                    code: Some(code),
                    message: "x".into(),
                },
                "creating",
            );
            assert_eq!(matches!(e, BackendError::Refused(_)), refused, "{code}");
        }
    }
}
