//! Malformed and hostile requests: each gets a 4xx (never 5xx) with a JSON error body whose
//! `message` names the problem, and roomd stays healthy throughout.

use roomd_tests::{ApiRequest, ApiResponse, HarnessError, Roomd};
use serde_json::json;

/// The test roomd's body limit, small so that the oversized bodies stay cheap.
const MAX_BODY_BYTES: usize = 4096;

struct Tokens {
    admin: String,
    user: String,
    audit: String,
}

/// How one case reaches roomd.
enum Sent {
    Api(ApiRequest),
    /// Exact bytes over TLS, for requests no HTTP library would produce.
    Raw(Vec<u8>),
}

/// Builds the request of one case.
type Sender = Box<dyn Fn(&Roomd, &Tokens) -> Sent>;

struct Case {
    name: &'static str,
    send: Sender,
    /// Acceptable statuses (the contract leaves some choices open, e.g. 400 vs 422).
    statuses: &'static [u16],
    /// Text the error message must contain (case-insensitive), naming the problem.
    mention: Option<&'static str>,
    /// Whether the answer comes from roomd's API layer (JSON body) rather than from the HTTP
    /// parser refusing bytes that never become a request.
    json_body: bool,
}

fn case(
    name: &'static str,
    statuses: &'static [u16],
    mention: Option<&'static str>,
    send: impl Fn(&Roomd, &Tokens) -> Sent + 'static,
) -> Case {
    Case {
        name,
        send: Box::new(send),
        statuses,
        mention,
        json_body: true,
    }
}

fn protocol_case(
    name: &'static str,
    statuses: &'static [u16],
    send: impl Fn(&Roomd, &Tokens) -> Sent + 'static,
) -> Case {
    Case {
        name,
        send: Box::new(send),
        statuses,
        mention: None,
        json_body: false,
    }
}

/// `POST /api/v1/commands/{name}` as admin with a JSON content type and these body bytes.
fn command(roomd: &Roomd, tokens: &Tokens, name: &str, body: &[u8]) -> Sent {
    Sent::Api(
        roomd
            .request("POST", &format!("/api/v1/commands/{name}"))
            .bearer(&tokens.admin)
            .header("Content-Type", "application/json")
            .body(body.to_vec()),
    )
}

/// `PATCH /api/v1/config` as admin with a JSON content type and these body bytes.
fn patch(roomd: &Roomd, tokens: &Tokens, body: &[u8]) -> Sent {
    Sent::Api(
        roomd
            .request("PATCH", "/api/v1/config")
            .bearer(&tokens.admin)
            .header("Content-Type", "application/json")
            .body(body.to_vec()),
    )
}

fn admin_json(roomd: &Roomd, tokens: &Tokens, method: &str, path: &str, body: &[u8]) -> Sent {
    Sent::Api(
        roomd
            .request(method, path)
            .bearer(&tokens.admin)
            .header("Content-Type", "application/json")
            .body(body.to_vec()),
    )
}

fn get_as(roomd: &Roomd, token: &str, path: &str) -> Sent {
    Sent::Api(roomd.get(path).bearer(token))
}

fn get_with_header(roomd: &Roomd, path: &str, name: &str, value: &str) -> Sent {
    Sent::Api(roomd.get(path).header(name, value))
}

fn deep_nesting(levels: usize) -> Vec<u8> {
    let mut body = "{\"a\":".repeat(levels).into_bytes();
    body.extend_from_slice(b"1");
    body.extend(std::iter::repeat_n(b'}', levels));
    body
}

fn cases() -> Vec<Case> {
    vec![
        // --- command bodies ---
        case("truncated JSON", &[400], Some("json"), |r, t| {
            command(r, t, "audio.volume.set", b"{\"level\": ")
        }),
        case("not JSON at all", &[400], Some("json"), |r, t| {
            command(r, t, "audio.volume.set", b"level=30")
        }),
        case(
            "trailing garbage after JSON",
            &[400],
            Some("json"),
            |r, t| command(r, t, "audio.volume.set", b"{\"level\":30} xyz"),
        ),
        case("single quotes", &[400], Some("json"), |r, t| {
            command(r, t, "audio.volume.set", b"{'level':30}")
        }),
        case("byte order mark", &[400], None, |r, t| {
            command(
                r,
                t,
                "audio.volume.set",
                "\u{feff}{\"level\":30}".as_bytes(),
            )
        }),
        case("invalid UTF-8", &[400], Some("utf-8"), |r, t| {
            command(r, t, "audio.volume.set", b"{\"level\":\"\xff\xfe\"}")
        }),
        case("lone surrogate escape", &[400, 422], None, |r, t| {
            command(r, t, "video.layout.set", b"{\"layout\":\"\\ud800\"}")
        }),
        case("deep nesting", &[400], Some("nest"), |r, t| {
            command(r, t, "audio.volume.set", &deep_nesting(200))
        }),
        case(
            "empty body where arguments are required",
            &[400, 422],
            None,
            |r, t| command(r, t, "audio.volume.set", b""),
        ),
        case("level is a string", &[422], Some("level"), |r, t| {
            command(r, t, "audio.volume.set", br#"{"level":"loud"}"#)
        }),
        case("level above 100", &[422], Some("level"), |r, t| {
            command(r, t, "audio.volume.set", br#"{"level":101}"#)
        }),
        case("level negative", &[422], Some("level"), |r, t| {
            command(r, t, "audio.volume.set", br#"{"level":-1}"#)
        }),
        case("level fractional", &[422], Some("level"), |r, t| {
            command(r, t, "audio.volume.set", br#"{"level":30.5}"#)
        }),
        case("level huge number", &[400, 422], Some("json"), |r, t| {
            command(r, t, "audio.volume.set", br#"{"level":1e400}"#)
        }),
        case("level boolean", &[422], Some("level"), |r, t| {
            command(r, t, "audio.volume.set", br#"{"level":true}"#)
        }),
        case("level null", &[422], Some("level"), |r, t| {
            command(r, t, "audio.volume.set", br#"{"level":null}"#)
        }),
        case("missing level", &[422], Some("level"), |r, t| {
            command(r, t, "audio.volume.set", b"{}")
        }),
        case("extra field", &[422], Some("extra"), |r, t| {
            command(r, t, "audio.volume.set", br#"{"level":30,"extra":1}"#)
        }),
        case("arguments are an array", &[422], None, |r, t| {
            command(r, t, "audio.volume.set", b"[30]")
        }),
        case("arguments are null", &[422], None, |r, t| {
            command(r, t, "audio.volume.set", b"null")
        }),
        case("arguments are a number", &[422], None, |r, t| {
            command(r, t, "audio.microphones.mute", b"7")
        }),
        case("unknown layout", &[422], Some("layout"), |r, t| {
            command(r, t, "video.layout.set", br#"{"layout":"mosaic"}"#)
        }),
        case("layout is a number", &[422], Some("layout"), |r, t| {
            command(r, t, "video.layout.set", br#"{"layout":3}"#)
        }),
        case(
            "selfview position unknown",
            &[422],
            Some("position"),
            |r, t| {
                command(
                    r,
                    t,
                    "video.selfview.set",
                    br#"{"mode":"on","position":"middle"}"#,
                )
            },
        ),
        case("selfview mode missing", &[422], Some("mode"), |r, t| {
            command(r, t, "video.selfview.set", br#"{"position":"upper-left"}"#)
        }),
        case(
            "argument for a command without any",
            &[422],
            Some("now"),
            |r, t| command(r, t, "audio.microphones.mute", br#"{"now":true}"#),
        ),
        case("unknown command", &[404], Some("audio.explode"), |r, t| {
            command(r, t, "audio.explode", b"{}")
        }),
        case(
            "command name with encoded traversal",
            &[404],
            None,
            |r, t| command(r, t, "..%2F..%2Fconfig", b"{}"),
        ),
        case("command name with a NUL byte", &[400, 404], None, |r, t| {
            command(r, t, "audio%00volume.set", b"{}")
        }),
        // --- content type and size ---
        case("text/plain body", &[415], Some("content-type"), |r, t| {
            Sent::Api(
                r.request("POST", "/api/v1/commands/audio.volume.set")
                    .bearer(&t.admin)
                    .header("Content-Type", "text/plain")
                    .body(br#"{"level":30}"#.to_vec()),
            )
        }),
        case("no content type", &[415], Some("content-type"), |r, t| {
            Sent::Api(
                r.request("POST", "/api/v1/commands/audio.volume.set")
                    .bearer(&t.admin)
                    .body(br#"{"level":30}"#.to_vec()),
            )
        }),
        case("form content type", &[415], Some("content-type"), |r, t| {
            Sent::Api(
                r.request("PATCH", "/api/v1/config")
                    .bearer(&t.admin)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(b"audio.default_volume=3".to_vec()),
            )
        }),
        case("body over max_body_bytes", &[413], Some("4096"), |r, t| {
            let mut body = br#"{"level":30,"pad":""#.to_vec();
            body.extend(std::iter::repeat_n(b'x', MAX_BODY_BYTES * 4));
            body.extend_from_slice(b"\"}");
            command(r, t, "audio.volume.set", &body)
        }),
        case(
            "chunked body over max_body_bytes",
            &[413],
            Some("4096"),
            |r, t| {
                let mut body = br#"{"audio":{"default_volume":30},"pad":""#.to_vec();
                body.extend(std::iter::repeat_n(b'x', MAX_BODY_BYTES * 4));
                body.extend_from_slice(b"\"}");
                Sent::Api(
                    r.request("PATCH", "/api/v1/config")
                        .bearer(&t.admin)
                        .header("Content-Type", "application/json")
                        .body_chunked(body),
                )
            },
        ),
        case(
            "20 MiB announced: refused before it arrives",
            &[413],
            Some("4096"),
            |r, t| {
                Sent::Raw(format!("POST /api/v1/commands/audio.volume.set HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 20971520\r\nConnection: close\r\n\r\n{{", r.port(), t.admin).into_bytes())
            },
        ),
        // --- configuration merge patches ---
        case(
            "config value out of range",
            &[422],
            Some("audio.default_volume"),
            |r, t| patch(r, t, br#"{"audio":{"default_volume":150}}"#),
        ),
        case(
            "config value of the wrong type",
            &[422],
            Some("audio.default_volume"),
            |r, t| patch(r, t, br#"{"audio":{"default_volume":"loud"}}"#),
        ),
        case("unknown config section", &[422], Some("nope"), |r, t| {
            patch(r, t, br#"{"nope":{"x":1}}"#)
        }),
        case("unknown config key", &[422], Some("audio.nope"), |r, t| {
            patch(r, t, br#"{"audio":{"nope":1}}"#)
        }),
        case(
            "config patch is an array",
            &[400, 422],
            Some("object"),
            |r, t| patch(r, t, b"[1,2]"),
        ),
        case(
            "config patch is a string",
            &[400, 422],
            Some("object"),
            |r, t| patch(r, t, b"\"volume\""),
        ),
        case(
            "listen is not a list",
            &[422],
            Some("api.listen"),
            |r, t| patch(r, t, br#"{"api":{"listen":"not-a-list"}}"#),
        ),
        case(
            "listen address unparsable",
            &[422],
            Some("api.listen"),
            |r, t| patch(r, t, br#"{"api":{"listen":["nowhere:99999"]}}"#),
        ),
        case(
            "max_body_bytes negative",
            &[422],
            Some("api.max_body_bytes"),
            |r, t| patch(r, t, br#"{"api":{"max_body_bytes":-5}}"#),
        ),
        case(
            "lockout threshold as text",
            &[422],
            Some("accounts.lockout_threshold"),
            |r, t| patch(r, t, br#"{"accounts":{"lockout_threshold":"five"}}"#),
        ),
        case(
            "relative state dir",
            &[422],
            Some("system.state_dir"),
            |r, t| patch(r, t, br#"{"system":{"state_dir":"relative/dir"}}"#),
        ),
        case(
            "hardware profile with traversal",
            &[422],
            Some("system.hardware_profile"),
            |r, t| {
                patch(
                    r,
                    t,
                    br#"{"system":{"hardware_profile":"../../etc/passwd"}}"#,
                )
            },
        ),
        case(
            "unknown layout in config",
            &[422],
            Some("video.default_layout"),
            |r, t| patch(r, t, br#"{"video":{"default_layout":"mosaic"}}"#),
        ),
        case(
            "section replaced by a number",
            &[422],
            Some("standby"),
            |r, t| patch(r, t, br#"{"standby":5}"#),
        ),
        case(
            "room name of control characters",
            &[422],
            Some("system.name"),
            |r, t| patch(r, t, br#"{"system":{"name":"a\u0007b"}}"#),
        ),
        // --- status paths ---
        case("unknown status path", &[404], Some("nope"), |r, t| {
            get_as(r, &t.user, "/api/v1/status/nope")
        }),
        case("unknown status leaf", &[404], Some("audio"), |r, t| {
            get_as(r, &t.user, "/api/v1/status/audio/nope")
        }),
        case("status path traversal", &[400, 404], None, |r, t| {
            get_as(r, &t.user, "/api/v1/status/../config")
        }),
        case(
            "status path encoded traversal",
            &[400, 404],
            None,
            |r, t| get_as(r, &t.user, "/api/v1/status/%2e%2e/%2e%2e/etc/passwd"),
        ),
        case("status path below a leaf", &[404], None, |r, t| {
            get_as(r, &t.user, "/api/v1/status/audio/volume/more")
        }),
        // --- credentials ---
        case("basic authentication", &[401], None, |r, _| {
            get_with_header(r, "/api/v1/status", "Authorization", "Basic YWRtaW46eA==")
        }),
        case("bearer without a token", &[401], None, |r, _| {
            get_with_header(r, "/api/v1/status", "Authorization", "Bearer")
        }),
        case("bearer with an unknown token", &[401], None, |r, _| {
            get_with_header(
                r,
                "/api/v1/status",
                "Authorization",
                "Bearer 00000000000000000000000000000000",
            )
        }),
        case("unknown scheme", &[401], None, |r, _| {
            get_with_header(r, "/api/v1/status", "Authorization", "Token abc")
        }),
        case("bearer with spaces inside", &[401], None, |r, _| {
            get_with_header(r, "/api/v1/status", "Authorization", "Bearer a b c")
        }),
        case("garbage session cookie", &[401], None, |r, _| {
            get_with_header(
                r,
                "/api/v1/status",
                "Cookie",
                "__Host-roomd_session=garbage",
            )
        }),
        case("empty session cookie", &[401], None, |r, _| {
            get_with_header(r, "/api/v1/status", "Cookie", "__Host-roomd_session=")
        }),
        case("cookie header of garbage", &[401], None, |r, _| {
            get_with_header(r, "/api/v1/status", "Cookie", ";;;===;;")
        }),
        // --- query parameters ---
        case("audit limit not a number", &[400], Some("limit"), |r, t| {
            get_as(r, &t.audit, "/api/v1/audit?limit=abc")
        }),
        case("audit limit negative", &[400], Some("limit"), |r, t| {
            get_as(r, &t.audit, "/api/v1/audit?limit=-1")
        }),
        case("audit limit overflowing", &[400], Some("limit"), |r, t| {
            get_as(r, &t.audit, "/api/v1/audit?limit=99999999999999999999999")
        }),
        case(
            "audit before not a number",
            &[400],
            Some("before"),
            |r, t| get_as(r, &t.audit, "/api/v1/audit?before=yesterday"),
        ),
        // --- methods ---
        case("DELETE on status", &[405], Some("DELETE"), |r, t| {
            Sent::Api(r.request("DELETE", "/api/v1/status").bearer(&t.admin))
        }),
        case("PUT on health", &[405], Some("PUT"), |r, _| {
            Sent::Api(r.request("PUT", "/api/v1/health"))
        }),
        case("POST on config", &[405], Some("POST"), |r, t| {
            admin_json(r, t, "POST", "/api/v1/config", b"{}")
        }),
        case("GET on a command", &[405], Some("GET"), |r, t| {
            get_as(r, &t.admin, "/api/v1/commands/audio.volume.set")
        }),
        case("made-up method", &[400, 405], None, |r, t| {
            Sent::Api(r.request("BREW", "/api/v1/status").bearer(&t.admin))
        }),
        // --- accounts ---
        case(
            "user without password",
            &[400, 422],
            Some("password"),
            |r, t| {
                admin_json(
                    r,
                    t,
                    "POST",
                    "/api/v1/users",
                    br#"{"username":"carol","role":"user"}"#,
                )
            },
        ),
        case(
            "user with a short password",
            &[400, 422],
            Some("password"),
            |r, t| {
                admin_json(
                    r,
                    t,
                    "POST",
                    "/api/v1/users",
                    br#"{"username":"carol","password":"short","role":"user"}"#,
                )
            },
        ),
        case(
            "user with an unknown role",
            &[400, 422],
            Some("role"),
            |r, t| {
                admin_json(
                    r,
                    t,
                    "POST",
                    "/api/v1/users",
                    br#"{"username":"carol","password":"long enough password","role":"superuser"}"#,
                )
            },
        ),
        case(
            "user name with traversal",
            &[400, 422],
            Some("username"),
            |r, t| {
                admin_json(
                    r,
                    t,
                    "POST",
                    "/api/v1/users",
                    br#"{"username":"../../etc","password":"long enough password","role":"user"}"#,
                )
            },
        ),
        case(
            "token with an unknown role",
            &[400, 422],
            Some("role"),
            |r, t| {
                admin_json(
                    r,
                    t,
                    "POST",
                    "/api/v1/tokens",
                    br#"{"name":"x","role":"root"}"#,
                )
            },
        ),
        case("token without a name", &[400, 422], Some("name"), |r, t| {
            admin_json(r, t, "POST", "/api/v1/tokens", br#"{"role":"user"}"#)
        }),
        case("revoking an unknown token", &[404], None, |r, t| {
            Sent::Api(
                r.request("DELETE", "/api/v1/tokens/doesnotexist")
                    .bearer(&t.admin),
            )
        }),
        case(
            "deleting an unknown user",
            &[404],
            Some("nobody"),
            |r, t| Sent::Api(r.request("DELETE", "/api/v1/users/nobody").bearer(&t.admin)),
        ),
        case(
            "password of an unknown user",
            &[404],
            Some("nobody"),
            |r, t| {
                admin_json(
                    r,
                    t,
                    "PUT",
                    "/api/v1/users/nobody/password",
                    br#"{"password":"long enough password"}"#,
                )
            },
        ),
        case(
            "login with a numeric username",
            &[400, 422],
            Some("username"),
            |r, _| {
                Sent::Api(
                    r.request("POST", "/api/v1/session")
                        .header("Content-Type", "application/json")
                        .body(br#"{"username":5,"password":"x"}"#.to_vec()),
                )
            },
        ),
        case("login without fields", &[400, 422], None, |r, _| {
            Sent::Api(
                r.request("POST", "/api/v1/session")
                    .header("Content-Type", "application/json")
                    .body(b"{}".to_vec()),
            )
        }),
        case("claim of a claimed device", &[409], None, |r, _| {
            Sent::Api(r.request("POST", "/api/v1/claim").header("Content-Type", "application/json").body(br#"{"code":"ACDEFGHJKMNP","username":"x","password":"long enough password"}"#.to_vec()))
        }),
        // --- bytes the HTTP parser refuses ---
        protocol_case("header of 300 KiB", &[400, 413, 431], |r, _| {
            Sent::Raw(format!("GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Filler: {}\r\nConnection: close\r\n\r\n", r.port(), "a".repeat(300 * 1024)).into_bytes())
        }),
        protocol_case("200 headers", &[400, 431], |r, _| {
            let headers: String = (0..200).map(|i| format!("X-Header-{i}: a\r\n")).collect();
            Sent::Raw(format!("GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{headers}Connection: close\r\n\r\n", r.port()).into_bytes())
        }),
        protocol_case("URL of 100 KiB", &[400, 404, 414, 431], |r, _| {
            Sent::Raw(format!("GET /api/v1/status/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", "a".repeat(100 * 1024), r.port()).into_bytes())
        }),
        protocol_case("Content-Length and chunked together", &[400], |r, _| {
            Sent::Raw(format!("POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n", r.port()).into_bytes())
        }),
        protocol_case("garbage request line", &[400], |_, _| {
            Sent::Raw(b"GARBAGE\r\n\r\n".to_vec())
        }),
        protocol_case("control character in a header", &[400], |r, _| {
            Sent::Raw(format!("GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Bad: a\x01b\r\nConnection: close\r\n\r\n", r.port()).into_bytes())
        }),
        protocol_case("non-numeric Content-Length", &[400], |r, _| {
            Sent::Raw(format!("POST /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: abc\r\nConnection: close\r\n\r\n{{}}", r.port()).into_bytes())
        }),
    ]
}

fn expected_code(status: u16) -> &'static [&'static str] {
    match status {
        400 => &["bad_request"],
        401 => &["unauthorized"],
        403 => &["forbidden"],
        404 => &["not_found"],
        405 => &["method_not_allowed"],
        409 => &["conflict"],
        413 => &["payload_too_large"],
        415 => &["unsupported_media_type"],
        422 => &["invalid_config", "invalid_command", "invalid_request"],
        429 => &["too_many_requests"],
        _ => &[],
    }
}

/// What is wrong with the answer to `case`, if anything.
fn judge(case: &Case, response: &ApiResponse) -> Option<String> {
    if !case.statuses.contains(&response.status) {
        return Some(format!(
            "status {} (expected one of {:?}): {}",
            response.status,
            case.statuses,
            response.text()
        ));
    }
    if !case.json_body {
        return None;
    }
    let Ok(body) = response.json() else {
        return Some(format!("body is not JSON: {:?}", response.text()));
    };
    let code = body["error"].as_str().unwrap_or_default();
    if !expected_code(response.status).contains(&code) {
        return Some(format!(
            "error code {code:?} for {} (docs/api.md: {:?}): {body}",
            response.status,
            expected_code(response.status)
        ));
    }
    let message = body["message"].as_str().unwrap_or_default();
    if message.trim().is_empty() {
        return Some(format!("no message: {body}"));
    }
    if let Some(mention) = case.mention
        && !message.to_lowercase().contains(&mention.to_lowercase())
    {
        return Some(format!("message does not mention {mention:?}: {message:?}"));
    }
    None
}

#[test]
fn malformed_requests_get_helpful_4xx_and_roomd_stays_healthy() -> Result<(), HarnessError> {
    let mut roomd = Roomd::start_claimed(&format!("[api]\nmax_body_bytes = {MAX_BODY_BYTES}\n"))?;
    let tokens = Tokens {
        admin: roomd.admin_token()?,
        user: roomd.token_for("user")?,
        audit: roomd.token_for("audit")?,
    };
    let config_before = std::fs::read(roomd.config_path()).map_err(|e| HarnessError::Io {
        what: "cannot read the config file".to_owned(),
        source: e,
    })?;
    let cases = cases();
    assert!(cases.len() >= 50, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let response = match (case.send)(&roomd, &tokens) {
            Sent::Api(request) => request.send(),
            Sent::Raw(bytes) => roomd.raw_exchange(&bytes),
        };
        match response {
            Ok(response) => {
                if let Some(problem) = judge(case, &response) {
                    failures.push(format!("{}: {problem}", case.name));
                }
            }
            Err(e) => failures.push(format!("{}: no answer: {e}", case.name)),
        }
        // A case that brought roomd down would make every later one fail for the wrong reason.
        if !roomd.is_running() {
            failures.push(format!("{}: roomd died", case.name));
            break;
        }
    }
    let health = roomd.get("/api/v1/health").send()?;
    let body = health.json().ok();
    let stderr = roomd.stderr_text();
    assert!(
        failures.is_empty(),
        "{} of {} malformed requests were not answered as docs/api.md says:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(
        health.status,
        200,
        "health after the malformed requests: {}",
        health.text()
    );
    assert_eq!(body, Some(json!({"status": "ok"})));
    assert!(roomd.is_running(), "roomd is not running any more");
    assert!(!stderr.contains("panicked"), "roomd panicked:\n{stderr}");
    let config_after = std::fs::read(roomd.config_path()).map_err(|e| HarnessError::Io {
        what: "cannot read the config file".to_owned(),
        source: e,
    })?;
    assert_eq!(
        config_before, config_after,
        "refused config patches changed the config file"
    );
    Ok(())
}
