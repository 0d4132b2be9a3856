//! `wausage serve`: the session `query` would build, served over Arrow
//! Flight SQL (arrow-flight's `FlightSqlService`, on tonic), read-only.
//! Without a token the server listens on loopback addresses only; with
//! `--tls-cert/--tls-key` it speaks TLS (rustls). SIGTERM or Ctrl-C stops
//! it accepting calls; running queries get 10 s to finish, then it exits 0.

mod auth;
mod catalog;
mod prepared;
mod query_log;
mod read_only;
mod service;
mod wire;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use datafusion::prelude::SessionContext;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Identity, Server, ServerTlsConfig};

pub use auth::Token;
pub use service::Limits;

use crate::error::{Result, WaError};

/// How long running queries may take to finish once the server stops.
pub const GRACE: Duration = Duration::from_secs(10);

/// The certificate chain and key, PEM.
pub struct Tls {
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl Tls {
    pub fn from_files(cert: &Path, key: &Path) -> Result<Tls> {
        let read = |flag: &str, p: &Path| {
            std::fs::read(p).map_err(|e| WaError::io(format!("{flag} {}", p.display()), e))
        };
        Ok(Tls {
            cert: read("--tls-cert", cert)?,
            key: read("--tls-key", key)?,
        })
    }
}

pub struct ServeOptions {
    pub addr: SocketAddr,
    pub token: Option<Token>,
    pub tls: Option<Tls>,
    pub limits: Limits,
}

/// Without a token, the only addresses a server may listen on.
pub fn check_bind(addr: &SocketAddr, token: Option<&Token>) -> Result<()> {
    if token.is_none() && !addr.ip().is_loopback() {
        return Err(WaError::Usage(format!(
            "--bind {addr} listens beyond this machine: give --token-file FILE so that \
             only clients with the token are answered, or bind a loopback address \
             (127.0.0.1, ::1)"
        )));
    }
    Ok(())
}

/// Serves `ctx` until SIGTERM or Ctrl-C.
pub async fn run(ctx: SessionContext, options: ServeOptions) -> Result<()> {
    check_bind(&options.addr, options.token.as_ref())?;
    let listener = tokio::net::TcpListener::bind(options.addr)
        .await
        .map_err(|e| WaError::io(format!("--bind {}", options.addr), e))?;
    let local = listener
        .local_addr()
        .map_err(|e| WaError::io(format!("--bind {}", options.addr), e))?;
    let service = service::WausageFlightSql::new(ctx, options.token.clone(), &options.limits);
    let token = options.token.clone();
    let service = FlightServiceServer::new(service)
        // Bound parameters and result batches past gRPC's 4 MiB default.
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let service =
        InterceptedService::new(service, move |request| auth::check(token.as_ref(), request));
    let mut server = Server::builder();
    let scheme = match &options.tls {
        Some(tls) => {
            let config = ServerTlsConfig::new().identity(Identity::from_pem(&tls.cert, &tls.key));
            server = server.tls_config(config).map_err(|e| {
                WaError::Input(format!(
                    "--tls-cert/--tls-key: not a usable certificate and key: {e}"
                ))
            })?;
            "grpc+tls"
        }
        None => "grpc",
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop_signal().await;
        eprintln!(
            "wausage serve: stopping: no new calls; running queries have {} s to finish",
            GRACE.as_secs()
        );
        let _ = stop_tx.send(true);
    });
    let stopped = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let grace_over = {
        let mut rx = stop_rx;
        async move {
            let _ = rx.wait_for(|s| *s).await;
            tokio::time::sleep(GRACE).await;
        }
    };
    eprintln!(
        "wausage serve: listening on {scheme}://{local}{}",
        if options.token.is_some() {
            " (token required)"
        } else {
            " (loopback, no token)"
        }
    );
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    let serving = server
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, stopped);
    tokio::select! {
        result = serving => result.map_err(|e| WaError::Input(format!("serving on {local}: {e}")))?,
        () = grace_over => eprintln!("wausage serve: queries still running after {} s were stopped", GRACE.as_secs()),
    }
    eprintln!("wausage serve: stopped");
    Ok(())
}

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    let term = async {
        match term.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    let int = async {
        match int.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = term => {},
        () = int => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_token_only_loopback() {
        let token = Token::for_tests("t");
        for ok in ["127.0.0.1:1", "[::1]:1", "127.0.0.2:1"] {
            assert!(check_bind(&ok.parse().unwrap(), None).is_ok(), "{ok}");
        }
        for beyond in ["0.0.0.0:1", "[::]:1", "10.1.2.3:1", "192.168.1.1:1"] {
            let addr = beyond.parse().unwrap();
            let err = check_bind(&addr, None).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{beyond}");
            assert!(check_bind(&addr, Some(&token)).is_ok());
        }
    }
}
