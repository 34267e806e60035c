//! The `launcher` binary: settings from flags and the environment, then the library does the rest.

use anyhow::Context;
use clap::Parser;
use launcher::settings::Command;
use launcher::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    if let Some(Command::Render { pool }) = &settings.command {
        let manifests = launcher::manifest::render_samples(
            &settings.templates,
            pool,
            &launcher::startup::placement(&settings),
        )?;
        println!("{}", serde_json::to_string_pretty(&manifests)?);
        return Ok(());
    }
    settings.telemetry.init();
    let app = Application::build(settings)
        .await
        .context("launcher cannot start")?;
    app.run_until_stopped().await.context("launcher stopped")?;
    tracing::info!("launcher stopped");
    Ok(())
}
