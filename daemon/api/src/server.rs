//! Binding the HTTPS server.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_http::{HttpService, KeepAlive, Protocol};
use actix_service::{IntoServiceFactory, ServiceFactoryExt, map_config};
use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::body::MessageBody;
use actix_web::dev::{
    AppConfig, Extensions, Server, ServiceFactory, ServiceRequest, ServiceResponse, fn_service,
};
use actix_web::middleware::{DefaultHeaders, from_fn};
use actix_web::rt::net::TcpStream;
use actix_web::{App, web};
use rustls_pki_types::CertificateDer;

use roomd_identity::tls::Handshakes;

use super::ApiState;
use super::access::access;
use super::connection_limit;
use super::error::ApiError;
use super::metrics::{ApiMetrics, count_requests};
use super::routes;

/// Why [`serve`] could not start the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// An address could not be bound (in use, not on this host, or a privileged port).
    #[error("cannot listen on {addr} (api.listen): {source}")]
    Bind {
        /// The address from `api.listen`.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The TLS handshake workers could not be set up.
    #[error("cannot set up the API's TLS: {0}")]
    Handshakes(roomd_identity::tls::TlsError),
}

/// The certificate a client presented in the TLS handshake (mutual TLS), already verified by
/// rustls against `api.client_ca`.
#[derive(Debug, Clone)]
pub(crate) struct ClientCertificate(pub CertificateDer<'static>);

fn remember_client_certificate(connection: &dyn Any, data: &mut Extensions) {
    if let Some(tls) = connection.downcast_ref::<TlsStream<TcpStream>>()
        && let Some(leaf) = tls.get_ref().1.peer_certificates().and_then(|c| c.first())
    {
        data.insert(ClientCertificate(leaf.clone().into_owned()));
    }
}

/// Binds every address and returns the server, not yet running (await it to serve).
///
/// Assembled from actix-web's parts rather than with `HttpServer::bind_rustls_0_23`, whose
/// workers run the TLS handshakes themselves: see `tls_handshake`.
pub fn serve(
    state: ApiState,
    tls: rustls::ServerConfig,
    listen: &[SocketAddr],
) -> Result<Server, ServeError> {
    let state = web::Data::new(state);
    // One set of request counters for every worker.
    let metrics = web::Data::new(ApiMetrics::default());
    let handshakes = Handshakes::new(tls).map_err(ServeError::Handshakes)?;
    let mut server = Server::build()
        // Signals are the daemon's business: it stops the server after telling systemd.
        .disable_signals()
        .shutdown_timeout(5);
    // Tells kept-alive connections to close when the server stops, as HttpServer does.
    let stopping = server.graceful_shutdown_signal();
    for addr in listen {
        let addr = *addr;
        let state = state.clone();
        let metrics = metrics.clone();
        let handshakes = handshakes.clone();
        let stopping = stopping.clone();
        server = server
            .bind(format!("roomd-api-{addr}"), addr, move || {
                let stopping = stopping.clone();
                let http = HttpService::build()
                    .graceful_shutdown_signal(move || {
                        let stopping = stopping.clone();
                        async move { stopping.notified().await }
                    })
                    // actix-web's defaults for HttpServer.
                    .keep_alive(KeepAlive::default())
                    .client_request_timeout(Duration::from_secs(5))
                    .client_disconnect_timeout(Duration::from_secs(1))
                    .secure()
                    .local_addr(addr)
                    .on_connect_ext(|io: &TlsStream<TcpStream>, data: &mut Extensions| {
                        remember_client_certificate(io, data);
                        connection_limit::on_connect(io, data);
                    })
                    .finish(map_config(
                        app(state.clone(), metrics.clone())
                            .into_factory()
                            .map_err(|e| e.error_response()),
                        // What HttpServer passes for an https listener. The constructor is
                        // hidden in actix-web's docs; Cargo.lock pins the version.
                        move |_| AppConfig::__priv_test_new(true, addr.to_string(), addr),
                    ))
                    .map_err(|e| tracing::debug!("API connection: {e}"));
                tls_handshake(handshakes.clone()).and_then(http)
            })
            .map_err(|source| ServeError::Bind { addr, source })?;
    }
    Ok(server.run())
}

/// The API's routes, middleware and state (one instance per worker).
fn app(
    state: web::Data<ApiState>,
    metrics: web::Data<ApiMetrics>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .app_data(metrics)
        .app_data(
            web::PathConfig::default()
                .error_handler(|e, _| ApiError::BadRequest(format!("bad path: {e}")).into()),
        )
        .app_data(
            web::QueryConfig::default().error_handler(|e, _| {
                ApiError::BadRequest(format!("bad query string: {e}")).into()
            }),
        )
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
        // Outermost: counts every answer, the refusals of the layers above included.
        .wrap(from_fn(count_requests))
        .configure(routes::configure)
        .default_service(web::to(routes::not_found))
}

/// The first step of every API connection: the source's budget and the TLS handshake, run by
/// `Handshakes` on threads of their own. The worker only awaits it, so a handshake waiting for
/// the TPM never holds up the requests of established connections on the same worker.
fn tls_handshake(
    handshakes: Arc<Handshakes>,
) -> impl ServiceFactory<
    TcpStream,
    Config = (),
    Response = (TlsStream<TcpStream>, Protocol, Option<SocketAddr>),
    Error = (),
    InitError = (),
> {
    fn_service(move |tcp: TcpStream| {
        let handshakes = handshakes.clone();
        async move {
            match handshakes.accept(tcp).await {
                // Only HTTP/1.1 is offered (ALPN).
                Ok((tls, peer)) => Ok((tls, Protocol::Http1, Some(peer))),
                Err(e) => {
                    // Refusals are counted and logged in bulk by `Handshakes`; a failed
                    // handshake is the client's business (wrong trust, port scan, timeout).
                    tracing::debug!("{e}");
                    Err(())
                }
            }
        }
    })
}
