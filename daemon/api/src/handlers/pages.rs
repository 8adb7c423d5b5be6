//! The web UI's pages and assets, embedded in the binary by `build.rs` from `webui/dist`.
//!
//! Pages carry no data (everything comes from the API afterwards), so they are public. Each
//! response sets its own strict security headers: the page CSP allows scripts, styles and
//! connections from this origin only (no inline scripts, no other origins), and nothing may
//! frame the pages.

use actix_web::http::header;
use actix_web::web::Path;
use actix_web::{HttpRequest, HttpResponse};

use crate::error::ApiError;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/webui_files.rs"));
}

/// The policy for pages. `blob:`/`mediastream:` let the guest page show its camera preview and
/// the room's picture; `data:`/`blob:` images are the display preview and inline icons.
pub(crate) const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; media-src 'self' blob: mediastream:; connect-src 'self'; \
     font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Hashed asset names change with their content, so browsers may keep them for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

fn file(path: &str) -> Option<(&'static str, &'static [u8])> {
    embedded::FILES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, content_type, bytes)| (*content_type, *bytes))
}

fn with_security_headers(
    mut response: actix_web::HttpResponseBuilder,
) -> actix_web::HttpResponseBuilder {
    response
        .insert_header(("Content-Security-Policy", PAGE_CSP))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cross-Origin-Opener-Policy", "same-origin"))
        .insert_header((
            "Permissions-Policy",
            "camera=(self), microphone=(self), geolocation=(), payment=()",
        ));
    response
}

/// The single page of the app; it picks the panel, admin or guest view from its path.
pub(crate) async fn page() -> Result<HttpResponse, ApiError> {
    let (content_type, bytes) = file("index.html")
        .ok_or_else(|| ApiError::Internal("the web UI has no index.html".into()))?;
    Ok(with_security_headers(HttpResponse::Ok())
        .content_type(content_type)
        // The page names the current asset hashes: always ask for the newest.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(bytes))
}

/// `/`: a browser on the device's own touch screen (loopback) gets the panel; anyone else the
/// admin pages, which offer the panel too.
pub(crate) async fn root(req: HttpRequest) -> HttpResponse {
    let local = req.peer_addr().is_some_and(|a| a.ip().is_loopback());
    with_security_headers(HttpResponse::Found())
        .insert_header((header::LOCATION, if local { "/panel" } else { "/admin" }))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// `/assets/{file}`: Vite's hashed scripts, styles and images.
pub(crate) async fn asset(name: Path<String>) -> Result<HttpResponse, ApiError> {
    let path = format!("assets/{}", name.as_str());
    let (content_type, bytes) = file(&path).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no such web UI asset: {}",
            name.chars().take(128).collect::<String>()
        ))
    })?;
    Ok(with_security_headers(HttpResponse::Ok())
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .body(bytes))
}
