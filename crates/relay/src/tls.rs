//! The Redis client, over `redis://` or `rediss://` (TLS with rustls).

use std::path::Path;

/// A Redis client for `url`. With `ca_file`, a `rediss://` server's certificate must chain to that CA
/// (a private one); without it, to the system's roots. Errors never echo the URL: it may hold a password.
pub fn redis_client(url: &str, ca_file: Option<&Path>) -> anyhow::Result<redis::Client> {
    pool_service::tls::install_crypto_provider();
    let shown = pool_service::redact::url(url);
    let client = match ca_file {
        Some(path) if url.starts_with("rediss://") => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pool_service::tls::read_ca_pem(path)?),
            },
        ),
        _ => redis::Client::open(url),
    };
    client.map_err(|e| anyhow::anyhow!("REDIS_URL {shown} cannot be used: {}", e.category()))
}
