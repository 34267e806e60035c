//! TLS set-up shared by every client that speaks it (`amqps://`, `rediss://`, `https://`).
//!
//! One crypto provider (ring, which the S3 client already builds) is installed per process, and one
//! setting, `TLS_CA_FILE`, names a PEM bundle of private CAs to trust (a cluster's own CA, or the test
//! harness's), so no service needs its own way of saying "trust this certificate".

use std::path::{Path, PathBuf};

/// Why the CA bundle cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS_CA_FILE {path}: {message}")]
    CaFile { path: PathBuf, message: String },
}

/// Make ring rustls's process-wide provider (idempotent). Every TLS client builds its configuration
/// from it, so it must run before the first connection.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Read a PEM bundle and check it holds at least one certificate.
pub fn read_ca_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    let err = |message: String| TlsError::CaFile {
        path: path.to_owned(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let text = String::from_utf8_lossy(&pem);
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(err("holds no PEM certificate".into()));
    }
    Ok(pem)
}
