//! Each command: check its input with the services' own grammar (`pool_core`), ask the service, and
//! render the answer. A command returns what to print and the exit code; `main` does the printing.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use clap::CommandFactory;
use pool_core::request::RankingRequest;
use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{Cli, Command, EventsCommand, Filters, Global, LaunchArgs, Shell};
use crate::client::{Client, Reply, Service, refusal};
use crate::error::{CliError, Exit};
use crate::model::{Choice, Launch, Launches, Ranking, Scale};
use crate::output::{self, Format, Style};

/// What a finished command prints on stdout, its exit code, and a note for stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub stdout: String,
    pub exit: Exit,
    /// Said on stderr (so it never pollutes JSON on stdout): "no launches", how a launch ended.
    pub note: Option<String>,
}

impl Outcome {
    fn found(stdout: String) -> Self {
        Self {
            stdout,
            exit: Exit::Found,
            note: None,
        }
    }
}

/// Everything a command needs: the settings, an HTTP client and the table style.
pub struct Context {
    pub global: Global,
    pub client: Client,
    pub style: Style,
}

/// Run the command `cli` names.
pub async fn run(cli: Cli, ctx: &Context) -> Result<Outcome, CliError> {
    match cli.command {
        Command::GetPool {
            filters,
            k,
            exclude,
        } => get_pool(ctx, &filters, k, exclude).await,
        Command::Pools { filters, limit } => pools(ctx, &filters, limit).await,
        Command::Scale { workload } => scale(ctx, workload.as_deref()).await,
        Command::Events {
            command: EventsCommand::Send { file },
        } => send_events(ctx, &file).await,
        Command::Events {
            command: EventsCommand::Import(args),
        } => crate::import::run(ctx, &args).await,
        Command::Launch(args) => launch(ctx, &args).await,
        Command::Launches { id, state, limit } => match id {
            Some(id) => show_launch(ctx, &id).await,
            None => list_launches(ctx, state.map(|s| s.as_str()), limit).await,
        },
        Command::Cancel { id } => cancel(ctx, &id).await,
        #[cfg(feature = "amqp")]
        Command::Dlq { command } => crate::dlq::run(command, ctx.global.output).await,
        Command::Completions { shell } => Ok(Outcome::found(completions(shell))),
    }
}

/// The query string of a ranking, parsed by the services' own grammar and written back in canonical
/// form: a parameter they would refuse is refused here, before any request, with the same message.
pub fn ranking_query(
    filters: &Filters,
    extra: &[(&str, Option<&str>)],
    for_pools: bool,
) -> Result<String, CliError> {
    let mut raw = url::form_urlencoded::Serializer::new(String::new());
    let given = [
        ("instance_types", filters.instance_types.as_deref()),
        ("availability_zones", filters.zones.as_deref()),
        ("window", filters.window.as_deref()),
        ("strategy", filters.strategy.as_deref()),
        ("min_jobs", filters.min_jobs.as_deref()),
        ("seed", filters.seed.as_deref()),
    ];
    for (name, value) in given.iter().chain(extra) {
        if let Some(v) = value {
            raw.append_pair(name, v);
        }
    }
    let request = RankingRequest::from_query(&raw.finish())?;
    Ok(request.canonical(for_pools))
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

/// Send and insist on a 2xx answer in JSON.
async fn call(
    ctx: &Context,
    service: Service,
    base: &str,
    method: Method,
    path: &str,
    body: Option<(&'static str, Vec<u8>)>,
    token: Option<&str>,
) -> Result<Value, CliError> {
    call_with(ctx, service, base, method, path, body, token, &[]).await
}

/// [`call`] to the launcher with the caller's token (`LAUNCHER_URL`, `LAUNCHER_TOKEN`), no body.
async fn launcher_call(ctx: &Context, method: Method, path: &str) -> Result<Value, CliError> {
    let token = Some(ctx.global.launcher_token.as_str());
    call(
        ctx,
        Service::Launcher,
        &ctx.global.launcher_url,
        method,
        path,
        None,
        token,
    )
    .await
}

/// [`call`] with extra request headers.
#[allow(clippy::too_many_arguments)]
async fn call_with(
    ctx: &Context,
    service: Service,
    base: &str,
    method: Method,
    path: &str,
    body: Option<(&'static str, Vec<u8>)>,
    token: Option<&str>,
    headers: &[(&'static str, &str)],
) -> Result<Value, CliError> {
    let reply: Reply = ctx
        .client
        .send_with(service, base, method, path, body, token, headers)
        .await?;
    if !reply.status.is_success() {
        return Err(refusal(service, base, &reply));
    }
    reply.json(service, base)
}

fn parse<T: serde::de::DeserializeOwned>(
    value: &Value,
    service: Service,
    base: &str,
) -> Result<T, CliError> {
    serde_json::from_value(value.clone()).map_err(|e| {
        CliError::service(format!(
            "{} at {base} answered in a shape poolctl does not know ({e}); try --output json, or a \
             poolctl as new as the service",
            service.name()
        ))
    })
}

async fn get_pool(
    ctx: &Context,
    filters: &Filters,
    k: Option<String>,
    exclude: Option<String>,
) -> Result<Outcome, CliError> {
    let query = ranking_query(
        filters,
        &[("k", k.as_deref()), ("exclude_pools", exclude.as_deref())],
        false,
    )?;
    let base = &ctx.global.relay_url;
    let path = with_query("/get-pool", &query);
    let value = call(ctx, Service::Relay, base, Method::GET, &path, None, None).await?;
    let stdout = match ctx.global.output {
        Format::Json => output::json(&value),
        Format::Ndjson => output::ndjson([&value]),
        Format::Table => {
            output::choice_table(&parse::<Choice>(&value, Service::Relay, base)?, &ctx.style)
        }
    };
    Ok(Outcome::found(stdout))
}

async fn pools(
    ctx: &Context,
    filters: &Filters,
    limit: Option<String>,
) -> Result<Outcome, CliError> {
    let query = ranking_query(filters, &[("limit", limit.as_deref())], true)?;
    let base = &ctx.global.relay_url;
    let path = with_query("/pools", &query);
    let value = call(ctx, Service::Relay, base, Method::GET, &path, None, None).await?;
    let ranking: Ranking = parse(&value, Service::Relay, base)?;
    if ranking.pools.is_empty() {
        return Err(CliError::no_data("no pools match these filters"));
    }
    let stdout = match ctx.global.output {
        Format::Json => output::json(&value),
        Format::Ndjson => output::ndjson(value["pools"].as_array().into_iter().flatten()),
        Format::Table => output::ranking_table(&ranking, &ctx.style),
    };
    Ok(Outcome::found(stdout))
}

async fn scale(ctx: &Context, workload: Option<&str>) -> Result<Outcome, CliError> {
    let base = &ctx.global.monitor_url;
    let path = match workload {
        Some(w) => {
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("workload", w)
                .finish();
            format!("/desired-worker-scale?{q}")
        }
        None => "/workloads".to_owned(),
    };
    let value = call(ctx, Service::Monitor, base, Method::GET, &path, None, None).await?;
    // One workload's report, or the list of all of them: a list either way.
    let records: Vec<Value> = match value {
        Value::Array(all) => all,
        one => vec![one],
    };
    if records.is_empty() {
        return Err(CliError::no_data("the monitor has no workloads configured"));
    }
    let stdout = match ctx.global.output {
        Format::Json if workload.is_some() => output::json(&records[0]),
        Format::Json => output::json(&Value::Array(records.clone())),
        Format::Ndjson => output::ndjson(&records),
        Format::Table => {
            let reports: Vec<Scale> = parse(&Value::Array(records), Service::Monitor, base)?;
            output::scale_table(&reports, &ctx.style)
        }
    };
    Ok(Outcome::found(stdout))
}

/// The content type of an events body: a JSON array or a single JSON object is `application/json`,
/// anything else (one object per line) NDJSON.
pub fn events_content_type(body: &[u8]) -> &'static str {
    let trimmed = body.trim_ascii_start();
    match trimmed.first() {
        Some(b'[') => "application/json",
        Some(b'{') if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() => {
            "application/json"
        }
        _ => "application/x-ndjson",
    }
}

fn read_input(file: &Path) -> Result<Vec<u8>, CliError> {
    if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| CliError::usage(format!("cannot read events from standard input: {e}")))?;
        Ok(buf)
    } else {
        std::fs::read(file).map_err(|e| {
            CliError::usage(format!(
                "cannot read {}: {e} (give a file of NDJSON or JSON events, or - for standard input)",
                file.display()
            ))
        })
    }
}

async fn send_events(ctx: &Context, file: &Path) -> Result<Outcome, CliError> {
    let body = read_input(file)?;
    let name = if file.as_os_str() == "-" {
        "standard input".to_owned()
    } else {
        file.display().to_string()
    };
    // The intake's own parser: a bad line is reported here, with its number, before anything is sent.
    let events = pool_core::event::ndjson::parse_events(&body).map_err(|invalid| {
        let mut message = format!("{name}: {invalid}; nothing was sent");
        for bad in invalid.listed.iter().skip(1) {
            message.push_str(&format!("\n  {bad}"));
        }
        CliError::usage(message)
    })?;
    let content_type = events_content_type(&body);
    let base = &ctx.global.intake_url;
    let value = call(
        ctx,
        Service::Intake,
        base,
        Method::POST,
        "/events",
        Some((content_type, body)),
        Some(&ctx.global.intake_token),
    )
    .await?;
    let accepted = value["accepted"].as_u64().unwrap_or(events.len() as u64);
    let stdout = match ctx.global.output {
        Format::Json => output::json(&value),
        Format::Ndjson => output::ndjson([&value]),
        Format::Table => format!("{accepted} events accepted by the intake at {base}\n"),
    };
    Ok(Outcome::found(stdout))
}

/// The `POST /launch` body, its instance types, zones, strategy and window checked with the ranking
/// grammar first (the launcher asks the relay with them).
pub fn launch_body(args: &LaunchArgs) -> Result<Value, CliError> {
    let filters = Filters {
        instance_types: Some(args.instance_types.clone()),
        zones: args.zones.clone(),
        window: args.window.clone(),
        strategy: args.strategy.clone(),
        ..Filters::default()
    };
    let query = ranking_query(&filters, &[], false)?;
    let request = RankingRequest::from_query(&query)?;
    if request.instance_types.is_empty() {
        return Err(CliError::usage(
            "instance_types: name at least one instance type (-t c6a.xlarge)",
        ));
    }
    let mut body = json!({
        "application": args.application,
        "arguments": args.arguments,
        "instance_types": request.instance_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "availability_zones": request.zones.iter().map(|z| z.as_str()).collect::<Vec<_>>(),
    });
    if let Some(size) = args.size {
        body["size"] = json!(size.as_str());
    }
    if let Some(n) = args.max_attempts {
        body["max_attempts"] = json!(n);
    }
    if let Some(s) = request.strategy {
        body["strategy"] = json!(s.as_str());
    }
    if let Some(w) = &args.window {
        body["window"] = json!(w.trim());
    }
    Ok(body)
}

/// A launch id as a path segment: refused unless it could be one (letters, digits, `-`).
fn launch_path(id: &str) -> Result<String, CliError> {
    let id = id.trim();
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(CliError::usage(format!(
            "{id:?} is not a launch id (see `poolctl launches` for them)"
        )));
    }
    Ok(format!("/launches/{id}"))
}

fn render_launch(ctx: &Context, value: &Value) -> Result<String, CliError> {
    Ok(match ctx.global.output {
        Format::Json => output::json(value),
        Format::Ndjson => output::ndjson([value]),
        Format::Table => output::launch_detail(
            &parse::<Launch>(value, Service::Launcher, &ctx.global.launcher_url)?,
            &ctx.style,
        ),
    })
}

async fn launch(ctx: &Context, args: &LaunchArgs) -> Result<Outcome, CliError> {
    let body = launch_body(args)?;
    let base = &ctx.global.launcher_url;
    let token = Some(ctx.global.launcher_token.as_str());
    let bytes = serde_json::to_vec(&body).expect("a JSON value serialises");
    let key = match args.idempotency_key.as_deref().map(str::trim) {
        None => None,
        Some(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            Some(k)
        }
        Some(_) => {
            return Err(CliError::usage(
                "--idempotency-key: 1-255 visible ASCII characters (e.g. a UUID)",
            ));
        }
    };
    let headers: Vec<(&'static str, &str)> =
        key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    let mut value = call_with(
        ctx,
        Service::Launcher,
        base,
        Method::POST,
        "/launch",
        Some(("application/json", bytes)),
        token,
        &headers,
    )
    .await?;
    if !args.wait {
        return Ok(Outcome::found(render_launch(ctx, &value)?));
    }
    let mut record: Launch = parse(&value, Service::Launcher, base)?;
    let path = launch_path(&record.launch_id)?;
    while !record.is_finished() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        value = launcher_call(ctx, Method::GET, &path).await?;
        record = parse(&value, Service::Launcher, base)?;
    }
    let stdout = render_launch(ctx, &value)?;
    if record.state == "COMPLETED" {
        Ok(Outcome::found(stdout))
    } else {
        Ok(Outcome {
            stdout,
            exit: Exit::Service,
            note: Some(format!(
                "launch {} ended {} after {} attempt(s)",
                record.launch_id,
                record.state,
                record.attempts.len()
            )),
        })
    }
}

async fn show_launch(ctx: &Context, id: &str) -> Result<Outcome, CliError> {
    let path = launch_path(id)?;
    let base = &ctx.global.launcher_url;
    let value = launcher_call(ctx, Method::GET, &path)
        .await
        .map_err(|e| match e.exit {
            Exit::NoData => CliError::no_data(format!("no launch {id} at {base}: {}", e.message)),
            _ => e,
        })?;
    Ok(Outcome::found(render_launch(ctx, &value)?))
}

async fn list_launches(
    ctx: &Context,
    state: Option<&str>,
    limit: Option<u32>,
) -> Result<Outcome, CliError> {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some(s) = state {
        q.append_pair("state", s);
    }
    if let Some(l) = limit {
        q.append_pair("limit", &l.to_string());
    }
    let base = &ctx.global.launcher_url;
    let path = with_query("/launches", &q.finish());
    let value = launcher_call(ctx, Method::GET, &path).await?;
    let list: Launches = parse(&value, Service::Launcher, base)?;
    let stdout = match ctx.global.output {
        Format::Json => output::json(&value),
        Format::Ndjson => output::ndjson(value["launches"].as_array().into_iter().flatten()),
        Format::Table if list.launches.is_empty() => String::new(),
        Format::Table => output::launches_table(&list.launches, &ctx.style),
    };
    if list.launches.is_empty() {
        let which = state.map(|s| format!(" in state {s}")).unwrap_or_default();
        return Ok(Outcome {
            stdout,
            exit: Exit::NoData,
            note: Some(format!("no launches{which}")),
        });
    }
    Ok(Outcome::found(stdout))
}

async fn cancel(ctx: &Context, id: &str) -> Result<Outcome, CliError> {
    let path = launch_path(id)?;
    let value = launcher_call(ctx, Method::DELETE, &path).await?;
    Ok(Outcome::found(render_launch(ctx, &value)?))
}

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> String {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "poolctl", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Size;

    fn filters(t: &str) -> Filters {
        Filters {
            instance_types: Some(t.into()),
            ..Filters::default()
        }
    }

    #[test]
    fn queries_are_checked_and_canonical() {
        let mut f = filters("M6A.xlarge, c6a.xlarge");
        f.window = Some("24h".into());
        assert_eq!(
            ranking_query(&f, &[("k", Some("3")), ("limit", Some("5"))], false).unwrap(),
            "instance_types=c6a.xlarge%2Cm6a.xlarge&window=86400&k=3"
        );
        assert_eq!(
            ranking_query(&f, &[("limit", Some("5"))], true).unwrap(),
            "instance_types=c6a.xlarge%2Cm6a.xlarge&window=86400&limit=5"
        );
        let e = ranking_query(&filters("oops"), &[], false).unwrap_err();
        assert_eq!(e.exit, Exit::Usage);
        assert!(e.message.contains("instance_types"), "{e}");
        let f = Filters {
            strategy: Some("best".into()),
            ..Filters::default()
        };
        assert!(
            ranking_query(&f, &[], true)
                .unwrap_err()
                .message
                .contains("strategy")
        );
    }

    #[test]
    fn events_are_sent_with_the_right_content_type() {
        assert_eq!(events_content_type(b" [{}]"), "application/json");
        assert_eq!(events_content_type(b"{\"a\":1}\n"), "application/json");
        assert_eq!(
            events_content_type(b"{\"a\":1}\n{\"a\":2}\n"),
            "application/x-ndjson"
        );
    }

    #[test]
    fn a_launch_body_follows_the_contract() {
        let args = LaunchArgs {
            application: "astronauts".into(),
            instance_types: "C6A.xlarge".into(),
            zones: Some("us-east-1a".into()),
            size: Some(Size::Medium),
            max_attempts: Some(2),
            strategy: None,
            window: Some("24h".into()),
            wait: false,
            idempotency_key: None,
            arguments: vec!["x".into()],
        };
        assert_eq!(
            launch_body(&args).unwrap(),
            json!({"application": "astronauts", "arguments": ["x"],
                   "instance_types": ["c6a.xlarge"], "availability_zones": ["us-east-1a"],
                   "size": "medium", "max_attempts": 2, "window": "24h"})
        );
        let bad = LaunchArgs {
            instance_types: "c6a".into(),
            ..args.clone()
        };
        assert_eq!(launch_body(&bad).unwrap_err().exit, Exit::Usage);
        let none = LaunchArgs {
            instance_types: " , ".into(),
            ..args
        };
        assert!(
            launch_body(&none)
                .unwrap_err()
                .message
                .contains("at least one")
        );
    }

    #[test]
    fn launch_ids_cannot_escape_their_path() {
        assert_eq!(launch_path("0193-ab").unwrap(), "/launches/0193-ab");
        for bad in ["", "../metrics", "a/b", "a?x=1"] {
            assert_eq!(launch_path(bad).unwrap_err().exit, Exit::Usage, "{bad}");
        }
    }

    #[test]
    fn completions_for_every_shell() {
        for (shell, marker) in [
            (Shell::Bash, "complete -F"),
            (Shell::Zsh, "#compdef poolctl"),
            (Shell::Fish, "complete -c poolctl"),
        ] {
            let script = completions(shell);
            assert!(script.contains(marker), "{shell:?}");
            assert!(script.contains("get-pool"), "{shell:?}");
        }
    }
}
