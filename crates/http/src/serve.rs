//! How every HTTP service listens, runs and stops: written once, so each behaves the same way on
//! SIGTERM.
//!
//! [`start`] builds an actix server on a listener bound by `pool_service::config::ListenArgs::bind`, with
//! actix's own signal handling off: the service, not actix, decides when to stop. [`run_until`] runs one
//! or more servers until a future completes (usually `pool_service::shutdown::signal()`, or the service's
//! own work ending), then stops them gracefully, in-flight requests getting each server's drain timeout,
//! and waits for them.

use std::fmt;
use std::future::Future;
use std::net::TcpListener;
use std::time::Duration;

use actix_http::{Request, Response};
use actix_service::IntoServiceFactory;
use actix_web::body::MessageBody;
use actix_web::dev::{AppConfig, Server, Service, ServiceFactory};
use actix_web::{Error, HttpServer};

/// How one server runs.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Worker threads (`ListenArgs::workers`).
    pub workers: usize,
    /// How long in-flight requests may take to finish once the server is told to stop.
    pub drain: Duration,
    /// Pending connections the socket queues (actix's default, 2048, when `None`).
    pub backlog: Option<u32>,
}

impl ServeOptions {
    pub fn new(workers: usize, drain: Duration) -> Self {
        Self {
            workers,
            drain,
            backlog: None,
        }
    }
}

/// An actix server for `factory` on `listener`. It does not run until polled ([`run_until`]).
pub fn start<F, I, S, B>(
    factory: F,
    listener: TcpListener,
    options: ServeOptions,
) -> std::io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let mut server = HttpServer::new(factory);
    if let Some(backlog) = options.backlog {
        server = server.backlog(backlog);
    }
    Ok(server
        .workers(options.workers.max(1))
        .disable_signals()
        .shutdown_timeout(options.drain.as_secs_f64().ceil() as u64)
        .listen(listener)?
        .run())
}

/// Run `servers` until `until` completes, then stop them gracefully and wait for them. Returns
/// `Some(until's output)`, or `None` when the servers ended first (their error, if any, is returned).
pub async fn run_until<T>(
    servers: Vec<Server>,
    until: impl Future<Output = T>,
) -> std::io::Result<Option<T>> {
    let handles: Vec<_> = servers.iter().map(Server::handle).collect();
    let all = futures_util::future::join_all(servers);
    tokio::pin!(all, until);
    tokio::select! {
        results = &mut all => {
            results.into_iter().collect::<std::io::Result<Vec<()>>>()?;
            Ok(None)
        }
        out = &mut until => {
            // `stop` sends the command at once; its future only reports completion, which needs the
            // servers polled: so drive the servers, not those futures.
            for handle in &handles {
                drop(handle.stop(true));
            }
            all.await.into_iter().collect::<std::io::Result<Vec<()>>>()?;
            Ok(Some(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{App, HttpResponse, web};

    fn hello_server() -> (Server, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = start(
            || {
                App::new().route(
                    "/",
                    web::get().to(|| async { HttpResponse::Ok().body("hi") }),
                )
            },
            listener,
            ServeOptions::new(1, Duration::from_secs(1)),
        )
        .unwrap();
        (server, port)
    }

    #[actix_web::test]
    async fn serves_until_told_then_stops_every_server_and_frees_the_ports() {
        let (a, port_a) = hello_server();
        let (b, port_b) = hello_server();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn(run_until(vec![a, b], async move {
            stopped.await.ok();
            "stopped"
        }));
        for port in [port_a, port_b] {
            let body = reqwest::get(format!("http://127.0.0.1:{port}/"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_eq!(body, "hi");
        }
        stop.send(()).unwrap();
        assert_eq!(run.await.unwrap().unwrap(), Some("stopped"));
        for port in [port_a, port_b] {
            assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
        }
    }
}
