//! `pool-amqp`: the broker's side of the deployment, run by an admin identity.
//!
//! ```text
//! AMQP_URL=amqp://admin:…@rabbitmq:5672/%2f pool-amqp declare   # the exchanges and quorum queues, once
//! pool-amqp permissions                                          # each role's permissions on these names
//! ```
//!
//! Services never declare anything (their users have no `configure` right): they check on connect that
//! the topology exists. `declare` is idempotent; it fails, naming the queue, when the broker refuses a
//! quorum queue (a classic queue of that name exists), rather than settling for another type.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pool_amqp::AmqpArgs;
use pool_amqp::access::Role;

#[derive(Parser, Debug)]
#[command(
    name = "pool-amqp",
    version,
    about = "Declare Pool Selector's RabbitMQ topology (as an admin identity) and print each role's permissions"
)]
struct Cli {
    #[command(flatten)]
    amqp: AmqpArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Declare the exchanges, the quorum queues and their bindings (idempotent). Exits non-zero when the
    /// broker refuses a quorum queue or the user may not configure them.
    Declare,
    /// Print each role's permissions on the configured names: role, configure, write, read, tags
    /// (tab-separated, the format of deploy/rabbitmq/permissions.tsv).
    Permissions,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let topology = cli.amqp.topology();
    match cli.command {
        Command::Permissions => {
            for role in Role::ALL {
                let p = role.permissions(&topology);
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    role.as_str(),
                    p.configure,
                    p.write,
                    p.read,
                    role.tags()
                );
            }
            ExitCode::SUCCESS
        }
        Command::Declare => {
            let result = async {
                let conn = pool_amqp::connect(&cli.amqp, "pool-amqp declare").await?;
                let declared = topology.declare(&conn).await;
                let _ = conn.close(200, "bye".into()).await;
                declared
            }
            .await;
            match result {
                Ok(()) => {
                    eprintln!(
                        "declared exchanges {:?}, {:?} and quorum queues {:?}, {:?} on {}",
                        topology.exchange,
                        topology.dead_letter_exchange,
                        topology.queue,
                        topology.dead_letter_queue,
                        cli.amqp.redacted_url()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
