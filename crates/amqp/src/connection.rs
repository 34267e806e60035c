//! Opening a connection, with TLS to an `amqps://` broker whose certificate a private CA signed. One
//! function for the publisher, the ingest worker, the dead-letter replay (poolctl) and
//! `pool-amqp declare`, so every client gets the same timeout, connection name and CA handling.

use lapin::{Connection, ConnectionProperties};

use crate::{AmqpArgs, AmqpError};

/// Open a connection named `name` (shown in the management UI) within the connect timeout.
pub async fn connect(args: &AmqpArgs, name: &str) -> Result<Connection, AmqpError> {
    let props = ConnectionProperties::default().with_connection_name(name.to_owned().into());
    let failed = |message: String| AmqpError::Connect {
        url: args.redacted_url(),
        message,
    };
    pool_service::tls::install_crypto_provider();
    let mut builder = lapin::DefaultConnectionBuilder::new()
        .map_err(|e| failed(e.to_string()))?
        .with_uri_str(args.url.clone())
        .with_properties(props);
    if let Some(path) = &args.ca_file {
        let pem = pool_service::tls::read_ca_pem(path).map_err(|e| failed(e.to_string()))?;
        builder = builder.with_tls_config(lapin::tcp::OwnedTLSConfig {
            identity: None,
            cert_chain: Some(String::from_utf8_lossy(&pem).into_owned()),
        });
    }
    match tokio::time::timeout(args.connect_timeout, builder.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed(format!(
            "no answer within {:?}",
            args.connect_timeout
        ))),
    }
}
