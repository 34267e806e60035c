//! Helpers shared by the generator's integration tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;
use event_generator::{Args, Summary};
use pool_core::event::Event;

/// A fixed end time, so backfills are reproducible.
pub const END: &str = "2026-11-22T10:00:00Z";

/// Parse `args` like the command line would and run the plan.
pub async fn generate(args: &[&str]) -> Summary {
    let args = Args::try_parse_from(std::iter::once("event-generator").chain(args.iter().copied()))
        .expect("valid arguments");
    let plan = args.plan(chrono::Utc::now()).expect("a valid plan");
    event_generator::run(plan, Arc::new(AtomicBool::new(false)))
        .await
        .expect("the run succeeds")
}

/// Every file under `root`, keyed by its path relative to `root`.
pub fn read_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Parse every line of an object, checking that each event sits in the partition its key names.
pub fn parse_object(key: &str, bytes: &[u8]) -> Vec<Event> {
    assert!(bytes.ends_with(b"\n"), "{key} ends with a newline");
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| {
            let e = Event::from_json(line)
                .unwrap_or_else(|err| panic!("{key}: {err}: {}", String::from_utf8_lossy(line)));
            let partition = e.partition().path();
            assert!(
                key.contains(&format!("{partition}/")),
                "{key} holds an event of {partition}"
            );
            e
        })
        .collect()
}
