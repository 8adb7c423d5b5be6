//! Connections per source: one address (IPv6 by /64) may hold at most
//! [`MAX_CONNECTIONS_PER_SOURCE`] connections to the API at once, so that one client cannot
//! take every worker's connections (and file descriptors) from the panel and the admins.
//!
//! Each accepted connection takes a place when it is set up ([`on_connect`]); the place is
//! given back when the connection's data is dropped, i.e. when the connection ends. A
//! connection beyond the limit is answered 503 with `Connection: close` on its first request
//! ([`refuse_over_limit`]); actix closes connections that send no request within its request
//! timeout, so holding places needs live connections.

use std::any::Any;

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::rt::net::TcpStream;
use actix_web::{HttpResponse, ResponseError};

use super::error::ApiError;
use roomd_base::net_source::OpenPerSource;

/// Enough for a browser (six per host) on the panel and a few admin pages and scripts on one
/// machine behind it.
pub(crate) const MAX_CONNECTIONS_PER_SOURCE: usize = 32;

static OPEN: OpenPerSource = OpenPerSource::new();

/// Marks a connection that came over the limit.
#[derive(Clone, Copy)]
struct OverLimit;

/// Called by actix for each new connection: takes a place (kept in the connection's data, so
/// given back when the connection ends), or marks it over the limit.
pub(crate) fn on_connect(connection: &dyn Any, data: &mut Extensions) {
    let Some(peer) = connection
        .downcast_ref::<TlsStream<TcpStream>>()
        .and_then(|tls| tls.get_ref().0.peer_addr().ok())
    else {
        return;
    };
    match OPEN.take(peer.ip(), MAX_CONNECTIONS_PER_SOURCE, None) {
        Ok(place) => {
            data.insert(place);
        }
        Err(_) => {
            data.insert(OverLimit);
        }
    }
}

/// Answers requests on a connection over the limit with 503 and closes it.
pub(crate) async fn refuse_over_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if req.conn_data::<OverLimit>().is_some() {
        let error = ApiError::Unavailable(format!(
            "{MAX_CONNECTIONS_PER_SOURCE} connections from this address are open, the most one \
             address may hold; reuse or close one"
        ));
        let mut response: HttpResponse = error.error_response();
        response
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        return Ok(req.into_response(response).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}
