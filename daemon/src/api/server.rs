//! Binding the HTTPS server.

use std::any::Any;
use std::net::SocketAddr;

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use rustls_pki_types::CertificateDer;

use actix_web::dev::Server;
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::{App, HttpServer, web};

use super::ApiState;
use super::access::access;
use super::connection_limit;
use super::error::ApiError;
use super::routes;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr} (api.listen): {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The certificate a client presented in the TLS handshake (mutual TLS), already verified by
/// rustls against `api.client_ca`.
#[derive(Debug, Clone)]
pub struct ClientCertificate(pub CertificateDer<'static>);

fn remember_client_certificate(connection: &dyn Any, data: &mut Extensions) {
    if let Some(tls) = connection.downcast_ref::<TlsStream<TcpStream>>()
        && let Some(leaf) = tls.get_ref().1.peer_certificates().and_then(|c| c.first())
    {
        data.insert(ClientCertificate(leaf.clone().into_owned()));
    }
}

/// Binds every address and returns the server, not yet running (await it to serve).
pub fn serve(
    state: ApiState,
    tls: rustls::ServerConfig,
    listen: &[SocketAddr],
) -> Result<Server, ServeError> {
    let state = web::Data::new(state);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(
                web::PathConfig::default()
                    .error_handler(|e, _| ApiError::BadRequest(format!("bad path: {e}")).into()),
            )
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                ApiError::BadRequest(format!("bad query string: {e}")).into()
            }))
            .wrap(from_fn(access))
            .wrap(from_fn(connection_limit::refuse_over_limit))
            .wrap(
                DefaultHeaders::new()
                    .add(("Strict-Transport-Security", "max-age=31536000"))
                    .add(("X-Content-Type-Options", "nosniff"))
                    .add(("Cache-Control", "no-store"))
                    .add(("Referrer-Policy", "no-referrer"))
                    .add(("X-Frame-Options", "DENY"))
                    .add((
                        "Content-Security-Policy",
                        "default-src 'none'; frame-ancestors 'none'",
                    )),
            )
            .configure(routes::configure)
            .default_service(web::to(routes::not_found))
    })
    .on_connect(|connection, data| {
        remember_client_certificate(connection, data);
        connection_limit::on_connect(connection, data);
    })
    // Responses leave in several small TLS writes; with Nagle's algorithm on, the last one can
    // wait for the client's delayed ACK (40 ms on Linux): p99 went from 34 ms to below 1 ms.
    .tcp_nodelay(true)
    // Signals are the daemon's business: it stops the server after telling systemd.
    .disable_signals()
    .shutdown_timeout(5);
    for addr in listen {
        server = server
            .bind_rustls_0_23(addr, tls.clone())
            .map_err(|source| ServeError::Bind {
                addr: *addr,
                source,
            })?;
    }
    Ok(server.run())
}
