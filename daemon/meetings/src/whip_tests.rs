//! The WHIP/WHEP clients against a small real HTTP server implementing the resource semantics.

use std::sync::{Arc, Mutex};

use super::*;
use crate::test_server::{Answer, Request, TestServer};

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
const ANSWER: &str = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";
const TOKEN: &str = "s3cret-token";

fn client() -> HttpsClient {
    let policy = roomd_model::outbound::OutboundPolicy::new(&["127.0.0.0/8"]).expect("policy");
    HttpsClient::new(None, policy).expect("client")
}

/// A WHIP server: `POST /whip/ep` (token required) creates `/whip/res/<n>` (a relative
/// Location), `DELETE` removes it; unknown resources are 404.
fn whip_server() -> (TestServer, Arc<Mutex<Vec<String>>>) {
    let live = Arc::new(Mutex::new(Vec::<String>::new()));
    let resources = live.clone();
    let server = TestServer::start(move |req: &Request| {
        if req.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return Answer::Http(401, vec![], b"bad token".to_vec());
        }
        let mut live = resources.lock().unwrap();
        match (req.method.as_str(), req.target.as_str()) {
            ("POST", "/whip/ep") => {
                if req.header("content-type") != Some("application/sdp") || req.body != OFFER {
                    return Answer::Http(400, vec![], b"not my offer".to_vec());
                }
                let path = format!("/whip/res/{}", live.len() + 1);
                live.push(path.clone());
                Answer::Http(
                    201,
                    vec![
                        ("content-type".into(), "application/sdp".into()),
                        ("location".into(), path.trim_start_matches("/whip/").into()),
                        ("etag".into(), "\"xyzzy\"".into()),
                    ],
                    ANSWER.as_bytes().to_vec(),
                )
            }
            ("DELETE", path) if live.iter().any(|p| p == path) => {
                live.retain(|p| p != path);
                Answer::Http(200, vec![], vec![])
            }
            _ => Answer::Http(404, vec![], b"no such thing".to_vec()),
        }
    });
    (server, live)
}

#[test]
fn whip_creates_resolves_location_and_deletes() {
    let (server, live) = whip_server();
    let http = client();
    let session = offer(
        &http,
        Protocol::Whip,
        &server.url("/whip/ep"),
        Some(TOKEN),
        OFFER,
    )
    .expect("offer accepted");
    assert_eq!(session.answer, ANSWER);
    assert_eq!(session.etag.as_deref(), Some("\"xyzzy\""));
    // "res/1" relative to /whip/ep is /whip/res/1.
    assert_eq!(session.resource.as_str(), server.url("/whip/res/1"));
    assert_eq!(live.lock().unwrap().len(), 1);
    assert!(
        !format!("{session:?}").contains(TOKEN),
        "token must not show in Debug"
    );

    session.delete(&http).expect("delete");
    assert!(live.lock().unwrap().is_empty(), "the resource was deleted");
    let deletes: Vec<Request> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        deletes[0].header("authorization"),
        Some("Bearer s3cret-token")
    );
    // Gone already: leaving again is not an error.
    session
        .delete(&http)
        .expect("second delete of a gone resource");
}

#[test]
fn whip_wrong_or_missing_token_is_refused() {
    let (server, _) = whip_server();
    let http = client();
    let err = offer(
        &http,
        Protocol::Whip,
        &server.url("/whip/ep"),
        Some("wrong"),
        OFFER,
    )
    .expect_err("wrong token");
    assert!(
        matches!(err, WhipError::TokenRefused { status: 401, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("refused the token"), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "the token must not be in the message"
    );

    let err =
        offer(&http, Protocol::Whep, &server.url("/whip/ep"), None, OFFER).expect_err("no token");
    assert!(
        matches!(
            err,
            WhipError::TokenRequired {
                protocol: Protocol::Whep,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn whip_unknown_endpoint_is_not_found() {
    let (server, _) = whip_server();
    let err = offer(
        &client(),
        Protocol::Whip,
        &server.url("/nope?token=abc"),
        Some(TOKEN),
        OFFER,
    )
    .expect_err("404");
    assert!(matches!(err, WhipError::NotFound { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("/nope") && !message.contains("abc"),
        "{message}"
    );
}

fn one_answer(status: u16, headers: &[(&str, &str)], body: &str) -> TestServer {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect();
    let body = body.to_owned();
    TestServer::start(move |_| Answer::Http(status, headers.clone(), body.clone().into_bytes()))
}

#[test]
fn whip_server_errors_are_typed() {
    let http = client();
    let post = |server: &TestServer| offer(&http, Protocol::Whip, &server.url("/ep"), None, OFFER);

    let err = post(&one_answer(503, &[], "overloaded, try later")).expect_err("503");
    assert!(
        matches!(&err, WhipError::Status { status: 503, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("overloaded"), "{err}");

    let sdp = ("content-type", "application/sdp");
    let err = post(&one_answer(201, &[sdp], ANSWER)).expect_err("no location");
    assert!(matches!(err, WhipError::MissingLocation { .. }), "{err:?}");

    let loc = ("location", "/res/1");
    let err = post(&one_answer(
        201,
        &[loc, ("content-type", "text/html")],
        "<html>",
    ))
    .expect_err("html");
    assert!(
        matches!(&err, WhipError::NotSdp { content_type, .. } if content_type == "text/html"),
        "{err:?}"
    );

    let err = post(&one_answer(200, &[loc, sdp], ANSWER)).expect_err("200 is not 201");
    assert!(
        matches!(err, WhipError::NotCreated { status: 200, .. }),
        "{err:?}"
    );

    let err = post(&one_answer(201, &[loc, sdp], "hello")).expect_err("not SDP");
    assert!(matches!(err, WhipError::BadSdp { .. }), "{err:?}");

    // A Location that leaves TLS for another host is refused.
    let err = post(&one_answer(
        201,
        &[("location", "http://example.com/res"), sdp],
        ANSWER,
    ))
    .expect_err("insecure location");
    assert!(matches!(err, WhipError::BadLocation { .. }), "{err:?}");

    // So is one that stays on allowed loopback but leaves the endpoint's origin: another port,
    // another host (the token would go there with the DELETE).
    for elsewhere in [
        "http://127.0.0.1:1/res",
        "http://127.0.0.2/res",
        "//127.0.0.3/res",
    ] {
        let server = one_answer(201, &[("location", elsewhere), sdp], ANSWER);
        let err = post(&server).expect_err(elsewhere);
        assert!(
            matches!(err, WhipError::BadLocation { .. }) && err.to_string().contains("origin"),
            "{elsewhere}: {err:?}"
        );
    }
}

#[test]
fn whip_refuses_plain_http_to_other_hosts_and_bad_tokens() {
    let http = client();
    let err = offer(&http, Protocol::Whip, "http://192.0.2.1/whip", None, OFFER).expect_err("http");
    assert!(
        matches!(err, WhipError::Http(HttpsError::Insecure { .. })),
        "{err:?}"
    );
    let err = offer(
        &http,
        Protocol::Whip,
        "http://127.0.0.1:1/whip",
        Some("a\r\nb"),
        OFFER,
    )
    .expect_err("token");
    assert!(matches!(err, WhipError::BadToken), "{err:?}");
}

#[test]
fn whip_server_that_never_answers_times_out() {
    let server = TestServer::start(|_| Answer::Hang(std::time::Duration::from_secs(5)));
    let http = client().with_response_timeout(std::time::Duration::from_millis(500));
    let err = offer(&http, Protocol::Whip, &server.url("/ep"), None, OFFER).expect_err("hang");
    assert!(
        matches!(err, WhipError::Http(HttpsError::Timeout { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("did not answer in time"), "{err}");
}
