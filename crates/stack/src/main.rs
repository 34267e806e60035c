//! `stack`: the local process manager behind `make up` (scripts/stack.sh execs it). Everything it
//! runs is declared in a stack file (default deploy/stack.toml; --file or STACK_FILE for another).

mod health;
mod logs;
mod order;
mod process;
mod spec;
mod stack;
mod subst;
mod vars;

use std::path::PathBuf;

const USAGE: &str = "\
usage: stack [--file STACK_FILE] COMMAND

  up                    start what is not running (in dependency order), wait until each is ready,
                        print the URLs
  down                  stop exactly what `up` started (by pid file) and delete its data
  status                one line per component; exit 0 only when all of them run (1: some, 3: none)
  logs [COMPONENT...]   follow the logs (all components by default; Ctrl-C stops)
  restart SERVICE...    stop these services and start them again, each with the caller's environment
                        under its own and the binary it ran, and wait until they are ready
  stop SERVICE...       stop these services only (`restart` or `up` starts them again)
  start SERVICE...      start these services (and what they need) when not running, and wait
  run COMPONENT CMD...  run CMD with the component's environment
  env                   print the stack's URLs as shell exports
  render FILE           print a generated file of the stack file's [files]
  show [COMPONENT...]   print what `up` runs: each command and the environment it adds
  (and the stack file's [aliases], e.g. prometheus-config, rabbitmq-config)

The stack file: deploy/stack.toml (its comments list the STACK_* settings).";

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut file = std::env::var("STACK_FILE").ok().map(PathBuf::from);
    if args.first().map(String::as_str) == Some("--file") && args.len() >= 2 {
        file = Some(PathBuf::from(args.remove(1)));
        args.remove(0);
    }
    let file = file.unwrap_or_else(default_file);
    let mut name = "stack".to_string();
    let code = match run(&file, args, &mut name) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{name}: error: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// deploy/stack.toml of the repository this binary was built in (target/<profile>/stack), else of
/// the current folder.
fn default_file() -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|e| {
        e.ancestors()
            .skip(1)
            .map(|d| d.join("deploy/stack.toml"))
            .find(|f| f.is_file())
    });
    from_exe.unwrap_or_else(|| PathBuf::from("deploy/stack.toml"))
}

/// Runs a subcommand; `name` becomes the stack file's name (the prefix of the error message).
fn run(file: &std::path::Path, mut args: Vec<String>, name: &mut String) -> Result<i32, String> {
    if args.is_empty() || matches!(args[0].as_str(), "-h" | "--help" | "help") {
        eprintln!("{USAGE}");
        return Ok(2);
    }
    let mut s = stack::Stack::open(file)?;
    *name = s.name().to_string();
    if let Some(expansion) = s.alias(&args[0]) {
        args.splice(0..1, expansion);
    }
    let (cmd, rest) = (args[0].clone(), args[1..].to_vec());
    match (cmd.as_str(), rest.len()) {
        ("up", 0) => s.up().map(|_| 0),
        ("down", 0) => s.down().map(|_| 0),
        ("status", 0) => s.status(),
        ("logs", _) => s.logs(&rest).map(|_| 0),
        ("restart", _) => s.restart(&rest).map(|_| 0),
        ("stop", _) => s.stop(&rest).map(|_| 0),
        ("start", _) => s.start(&rest).map(|_| 0),
        ("run", n) if n >= 2 => s.run(&rest[0], &rest[1..]),
        ("env", 0) => s.env().map(|_| 0),
        ("render", 1) => s.render(&rest[0]).map(|_| 0),
        ("show", _) => s.show(&rest).map(|_| 0),
        _ => {
            eprintln!("{USAGE}");
            Ok(2)
        }
    }
}
