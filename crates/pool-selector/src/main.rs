use clap::Parser;
use pool_selector::{Application, Settings};

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    settings.telemetry.init();
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
