//! `ingest-worker` binary: configuration from flags and environment, then [`ingest_worker::Application`].

use clap::Parser;
use ingest_worker::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    settings.telemetry.init();
    let app = Application::build(settings).await?;
    tracing::info!(metrics_port = app.port(), "ingest-worker started");
    app.run_until_stopped(pool_service::shutdown::signal())
        .await
}
