//! `poolctl`: parse the command line, run the command, print, exit with its code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use poolctl::cli::Cli;
use poolctl::client::Client;
use poolctl::commands::{self, Context};
use poolctl::output::Style;
use poolctl::{CliError, Exit};

fn main() -> ExitCode {
    // clap prints its own usage errors and exits with 2 (help and --version with 0).
    let cli = Cli::parse();
    let no_color = std::env::var("NO_COLOR").ok();
    let stderr_style = Style::detect(std::io::stderr().is_terminal(), no_color.as_deref());
    let result = run(cli, no_color.as_deref());
    let exit = match result {
        Ok(outcome) => {
            print(&outcome.stdout);
            if let Some(note) = outcome.note {
                eprintln!("{note}");
            }
            outcome.exit
        }
        Err(e) => {
            let label = if stderr_style.color {
                "\x1b[1;31merror:\x1b[0m"
            } else {
                "error:"
            };
            eprintln!("{label} {}", e.message);
            e.exit
        }
    };
    ExitCode::from(exit.code() as u8)
}

fn run(cli: Cli, no_color: Option<&str>) -> Result<commands::Outcome, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(Exit::Service, format!("cannot start: {e}")))?;
    let ctx = Context {
        client: Client::new(cli.global.timeout, std::io::stderr().is_terminal())?,
        style: Style::detect(std::io::stdout().is_terminal(), no_color),
        global: cli.global.clone(),
    };
    runtime.block_on(commands::run(cli, &ctx))
}

/// Write to stdout; a closed pipe (`poolctl pools | head -3`) is not an error.
fn print(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes()).and_then(|_| out.flush());
}
