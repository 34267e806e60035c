//! The `intake` binary: settings from flags and the environment, then the library does the rest.

use anyhow::Context;
use clap::Parser;
use intake::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    settings.telemetry.init();
    let app = Application::build(settings)
        .await
        .context("intake cannot start")?;
    app.run_until_stopped().await.context("intake stopped")?;
    tracing::info!("intake stopped");
    Ok(())
}
