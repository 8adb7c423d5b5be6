//! API request counts and latencies, labelled by the route table's pattern (never the raw path,
//! so the number of series stays bounded whatever clients send), method and status class.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::routes::ROUTES;

/// Labels of both request metrics.
pub(super) type RequestLabels = [(&'static str, &'static str); 3];

/// Upper bounds of the latency buckets, in seconds: 1 ms to 10 s.
const BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The API's request counters, shared by every worker (one instance per server).
#[derive(Debug, Clone)]
pub(crate) struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram, fn() -> Histogram>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics {
            requests: Family::default(),
            durations: Family::new_with_constructor(histogram),
        }
    }
}

impl ApiMetrics {
    /// Counts one answered request.
    pub(crate) fn record(&self, labels: RequestLabels, seconds: f64) {
        self.requests.get_or_create(&labels).inc();
        self.durations.get_or_create(&labels).observe(seconds);
    }

    /// Adds both metrics to a scrape's registry (they share their counts with `self`).
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "roomd_api_requests",
            "API requests answered, by route pattern of the route table, method and status class",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "roomd_api_request_duration",
            "Time from a request's arrival to its answer (for the events WebSocket: to the upgrade)",
            Unit::Seconds,
            self.durations.clone(),
        );
    }
}

/// The labels for a request: the route pattern it matched (`unmatched` for anything outside
/// the table), its method if HTTP defines it (`other` otherwise), and `2xx`…`5xx`.
pub(super) fn labels(pattern: Option<&str>, method: &str, status: u16) -> RequestLabels {
    let route = pattern
        .and_then(|p| ROUTES.iter().find(|r| r.path == p))
        .map_or("unmatched", |r| r.path);
    let method = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ]
    .into_iter()
    .find(|m| *m == method)
    .unwrap_or("other");
    let class = match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    [
        ("route", route),
        ("method", method),
        ("status_class", class),
    ]
}

/// The outermost middleware: times every request and counts its answer, refusals of the access
/// check and of the connection limit included.
pub(crate) async fn count_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<ApiMetrics>>().cloned();
    let pattern = req.match_pattern();
    let method = req.method().clone();
    let result = next.call(req).await;
    if let Some(metrics) = metrics {
        let status = match &result {
            Ok(response) => response.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        metrics.record(
            labels(pattern.as_deref(), method.as_str(), status.as_u16()),
            started.elapsed().as_secs_f64(),
        );
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_the_route_table_only() {
        assert_eq!(
            labels(Some("/api/v1/status/{path:.*}"), "GET", 200),
            [
                ("route", "/api/v1/status/{path:.*}"),
                ("method", "GET"),
                ("status_class", "2xx")
            ]
        );
        assert_eq!(
            labels(Some("/no/such/{thing}"), "BREW", 404),
            [
                ("route", "unmatched"),
                ("method", "other"),
                ("status_class", "4xx")
            ]
        );
        assert_eq!(labels(None, "GET", 101)[2], ("status_class", "1xx"));
        assert_eq!(labels(None, "GET", 503)[2], ("status_class", "5xx"));
    }

    #[test]
    fn counts_and_times_are_encoded() {
        let metrics = ApiMetrics::default();
        metrics.record(labels(Some("/api/v1/health"), "GET", 200), 0.003);
        metrics.record(labels(Some("/api/v1/health"), "GET", 200), 0.2);
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                r#"roomd_api_requests_total{route="/api/v1/health",method="GET",status_class="2xx"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(concat!(
                r#"roomd_api_request_duration_seconds_bucket{route="/api/v1/health","#,
                r#"method="GET",status_class="2xx",le="0.005"} 1"#
            )),
            "{text}"
        );
    }
}
