//! URL rules and error classification of the signalling HTTP client.

use super::*;
use crate::test_server::{Answer, TestServer};
use roomd_model::outbound::OutboundPolicy;

#[test]
fn plain_http_only_to_loopback_addresses() {
    assert!(parse_url("https://janus.example:8089/janus").is_ok());
    assert!(parse_url("http://127.0.0.1:8088/janus").is_ok());
    assert!(parse_url("http://[::1]:8088/janus").is_ok());
    for insecure in [
        "http://janus.example/janus",
        "http://192.0.2.1/janus",
        // A name could resolve anywhere; only literal loopback addresses count.
        "http://localhost:8088/janus",
    ] {
        let err = parse_url(insecure).expect_err(insecure);
        assert!(
            matches!(err, HttpsError::Insecure { .. }),
            "{insecure}: {err:?}"
        );
    }
    let err = parse_url("ftp://janus.example/").expect_err("ftp");
    assert!(matches!(err, HttpsError::BadUrl { .. }), "{err:?}");
    let err = parse_url("janus.example").expect_err("relative");
    assert!(matches!(err, HttpsError::BadUrl { .. }), "{err:?}");
}

#[test]
fn messages_never_show_secrets_in_urls() {
    let url = Url::parse("https://user:pw@janus.example/janus?token=abc#frag").expect("url");
    assert_eq!(redact(&url), "https://janus.example/janus");
    let err = parse_url("https://user:pw@exa mple/x?token=abc").expect_err("bad");
    let message = err.to_string();
    assert!(
        !message.contains("pw") && !message.contains("abc"),
        "{message}"
    );
}

#[test]
fn refused_connection_and_status_errors_name_the_url() {
    // Port 1 on loopback: nothing listens there.
    let client = HttpsClient::new(None, loopback()).expect("client");
    let url = parse_url("http://127.0.0.1:1/janus?secret=x").expect("url");
    let err = client
        .request(Method::Get, &url, &[], None, None)
        .expect_err("refused");
    assert!(matches!(err, HttpsError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().contains("http://127.0.0.1:1/janus"),
        "{err}"
    );
    assert!(!err.to_string().contains("secret"), "{err}");

    let server = TestServer::start(|_| Answer::Http(500, vec![], b"boom\n\tdetails".to_vec()));
    let url = parse_url(&server.url("/x")).expect("url");
    let reply = client
        .request(Method::Get, &url, &[], None, None)
        .expect("a reply");
    let err = reply.success().expect_err("500");
    assert_eq!(
        err.to_string(),
        format!("{} answered HTTP 500", server.url("/x"))
    );
}

#[test]
fn unresolvable_host_is_a_dns_error() {
    // `.invalid` never resolves (RFC 6761), with or without a network.
    let listed = OutboundPolicy::new(&["janus.invalid"]).expect("policy");
    let client = HttpsClient::new(None, listed).expect("client");
    let url = parse_url("https://janus.invalid/janus").expect("url");
    let err = client
        .request(Method::Get, &url, &[], None, None)
        .expect_err("no such host");
    assert!(matches!(err, HttpsError::Dns { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("cannot resolve the host name of https://janus.invalid/janus: "),
        "{err}"
    );
}

#[test]
fn unlisted_hosts_and_internal_addresses_are_refused_before_connecting() {
    let server = TestServer::start(|_| Answer::Http(200, vec![], b"{}".to_vec()));
    let port = server
        .url("")
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let cases = [
        // Nothing listed: deny.
        (
            vec![],
            format!("https://127.0.0.1:{port}/janus"),
            "is not in",
        ),
        // Another network listed.
        (
            vec!["10.0.0.0/8"],
            format!("https://127.0.0.1:{port}/janus"),
            "is not in",
        ),
        // The name is listed but resolves to loopback, which is not.
        (
            vec!["localhost"],
            format!("https://localhost:{port}/janus"),
            "resolves to 127.0.0.1",
        ),
    ];
    for (entries, target, expected) in cases {
        let policy = OutboundPolicy::new(&entries).expect("policy");
        let client = HttpsClient::new(None, policy).expect("client");
        let url = parse_url(&target).expect("url");
        let err = client
            .request(Method::Get, &url, &[], None, None)
            .expect_err("refused");
        assert!(
            matches!(err, HttpsError::NotAllowed { .. }),
            "{entries:?}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(expected) && message.contains("meeting.allowed_servers"),
            "{message}"
        );
    }
    assert!(server.requests().is_empty(), "a refused target was reached");
}

/// What these tests reach: their servers on loopback.
fn loopback() -> roomd_model::outbound::OutboundPolicy {
    roomd_model::outbound::OutboundPolicy::new(&["127.0.0.0/8"]).expect("policy")
}
