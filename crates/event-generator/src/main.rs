//! `event-generator`: see the library docs and `event-generator --help`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Parser;
use event_generator::Args;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.telemetry.init();
    let plan = args.plan(chrono::Utc::now())?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        pool_service::shutdown::signal().await;
        flag.store(true, Ordering::Relaxed);
    });
    let summary = event_generator::run(plan, stop).await?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}
