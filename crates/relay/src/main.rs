//! The relay binary: parse the configuration, start logging, serve until SIGTERM.

use clap::Parser;
use relay::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    settings.telemetry.init();
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    tracing::info!("relay stopped");
    Ok(())
}
