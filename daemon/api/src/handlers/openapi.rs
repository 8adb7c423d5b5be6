use actix_web::HttpResponse;

/// The API's contract, as committed in `daemon/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../../../openapi.json");

pub(crate) async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI_JSON)
}
