//! RabbitMQ users of a test's own, one per [`Role`], with exactly the permissions the role gets in
//! production ([`Role::permissions`]) on the test's suffixed topology, created through the management
//! API as the test broker's admin (`TEST_RABBITMQ_MANAGEMENT_URL`) and deleted on drop.

use pool_amqp::AmqpArgs;
use pool_amqp::access::Role;

/// A user of the test broker in the role it was made for, deleted when dropped (best effort).
pub struct TestUser {
    pub name: String,
    pub password: String,
    pub role: Role,
    /// The test's settings, with the URL of this user and `declare_topology` off, as a service runs.
    pub amqp: AmqpArgs,
    /// The management API's base URL with this user's credentials.
    pub management_url: String,
    admin: Admin,
}

#[derive(Clone)]
struct Admin {
    base: url::Url,
    user: String,
    password: String,
    client: reqwest::Client,
}

impl Admin {
    fn from_env() -> Self {
        let url = url::Url::parse(&crate::servers::rabbitmq_management_url())
            .expect("TEST_RABBITMQ_MANAGEMENT_URL is a URL");
        let user = url.username().to_owned();
        let password = url.password().unwrap_or_default().to_owned();
        let mut base = url.clone();
        base.set_username("").unwrap();
        base.set_password(None).unwrap();
        Self {
            base,
            user,
            password,
            client: reqwest::Client::new(),
        }
    }

    async fn put(&self, path: &str, body: serde_json::Value) {
        let res = self
            .client
            .put(self.base.join(path).unwrap())
            .basic_auth(&self.user, Some(&self.password))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {path} on the management API: {e}"));
        assert!(
            res.status().is_success(),
            "PUT {path}: {} {}",
            res.status(),
            res.text().await.unwrap_or_default()
        );
    }
}

/// `%2f` for the default vhost, as the management API spells it in paths.
fn vhost_of(amqp_url: &str) -> String {
    let path = amqp_url
        .rsplit_once('/')
        .map(|(_, v)| v)
        .filter(|v| !v.contains('@') && !v.contains(':'))
        .unwrap_or("%2f");
    if path.is_empty() {
        "%2f".into()
    } else {
        path.to_owned()
    }
}

impl TestUser {
    /// A new user for `role` on the names of `amqp` (a test's suffixed settings).
    pub async fn create(role: Role, amqp: &AmqpArgs) -> Self {
        let admin = Admin::from_env();
        let name = crate::servers::unique(&format!("user-{}", role.as_str()));
        let password = uuid::Uuid::new_v4().simple().to_string();
        admin
            .put(
                &format!("api/users/{name}"),
                serde_json::json!({"password": password, "tags": role.tags()}),
            )
            .await;
        let p = role.permissions(&amqp.topology());
        let vhost = vhost_of(&amqp.url);
        admin
            .put(
                &format!("api/permissions/{vhost}/{name}"),
                serde_json::json!({"configure": p.configure, "write": p.write, "read": p.read}),
            )
            .await;
        let mut url = url::Url::parse(&amqp.url).expect("the AMQP URL parses");
        url.set_username(&name).unwrap();
        url.set_password(Some(&password)).unwrap();
        let mut as_user = amqp.clone();
        as_user.url = url.to_string();
        as_user.declare_topology = false;
        let mut management = admin.base.clone();
        management.set_username(&name).unwrap();
        management.set_password(Some(&password)).unwrap();
        Self {
            management_url: management.as_str().trim_end_matches('/').to_owned(),
            name,
            password,
            role,
            amqp: as_user,
            admin,
        }
    }
}

impl TestUser {
    /// A user in the monitor's role (the `monitoring` tag, permission on nothing) on the test broker.
    pub async fn monitoring() -> Self {
        Self::create(
            Role::Monitor,
            &AmqpArgs::for_url(crate::servers::amqp_url()),
        )
        .await
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Best effort (the name is unique anyway), and synchronous: a drop cannot await.
        let url = self
            .admin
            .base
            .join(&format!("api/users/{}", self.name))
            .unwrap();
        let _ = std::process::Command::new("curl")
            .args(["-fsS", "-o", "/dev/null", "-X", "DELETE", "-u"])
            .arg(format!("{}:{}", self.admin.user, self.admin.password))
            .arg(url.as_str())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
