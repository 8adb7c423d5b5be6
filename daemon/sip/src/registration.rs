//! The registration worker: keeps the room's binding at its registrar alive and reports
//! `status.sip`.

use std::sync::Arc;
use std::time::Duration;

use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::registration::{Registration, refresh_interval};
use rsipstack::sip::{StatusCode, Transport, Uri};
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::tls::TlsConfig;
use rsipstack::transport::{SipAddr, TransportLayer};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::SipError;
use crate::calls::{Route, SipPhone};
use crate::server::{SipServer, parse_server};
use roomd_core::RoomHandle;
use roomd_model::Secret;
use roomd_model::config::SipConfig;
use roomd_model::sip::{RegistrationState, SipStatus};

/// How long one REGISTER (with its digest round) may take before the server counts as not
/// answering. rsipstack's own transaction timer is 32 s; a room should fail over sooner.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest pause between failed attempts.
const RETRY_MAX: Duration = Duration::from_secs(60);
/// Most bytes read from `sip.ca_file`: a CA bundle, not an arbitrary file.
const CA_FILE_MAX_BYTES: u64 = 1 << 20;

/// What the SIP worker needs from roomd.
pub struct SipSetup {
    /// The room core (`status.sip`).
    pub room: RoomHandle,
    /// `[sip]`.
    pub config: SipConfig,
    /// `sip.password` from the sealed secret store; `None` when it is not set.
    pub password: Option<Secret>,
}

/// The running SIP account.
pub struct SipAccount {
    /// Registers and serves the endpoint until aborted (which closes the endpoint).
    pub task: JoinHandle<()>,
    /// Places calls; `None` when the account's setup cannot work (`status.sip` says why).
    pub phone: Option<Arc<SipPhone>>,
}

/// Starts the SIP account when `sip.registrar` is set; `None` otherwise. The task runs until
/// aborted; a setup that cannot work (no user, no CA) says why in `status.sip`.
pub fn start(setup: SipSetup) -> Option<SipAccount> {
    if setup.config.registrar.is_empty() {
        return None;
    }
    let SipSetup {
        room,
        config,
        password,
    } = setup;
    let account = match Account::from_config(&config, password) {
        Ok(account) => Arc::new(account),
        Err(e) => {
            let task = tokio::spawn(async move {
                tracing::warn!("SIP account: {e}");
                let mut status = SipStatus::starting(&config.registrar);
                status.registration.state = RegistrationState::Failed;
                status.registration.error = e.to_string();
                let _ = room.sip_report(status).await;
            });
            return Some(SipAccount { task, phone: None });
        }
    };
    // The endpoint's tasks (transaction timers, the TLS connections' readers) end with the
    // token, which is cancelled when the worker's task ends or is aborted.
    let cancel = CancellationToken::new();
    let endpoint = rsipstack::EndpointBuilder::new()
        .with_transport_layer(TransportLayer::new(cancel.clone()))
        .with_cancel_token(cancel.clone())
        .with_user_agent(concat!("roomd/", env!("CARGO_PKG_VERSION")))
        .build();
    let phone = Arc::new(SipPhone::new(
        endpoint.inner.clone(),
        account.clone(),
        room.clone(),
    ));
    let task = tokio::spawn(run(room, endpoint, cancel, account, phone.clone()));
    Some(SipAccount {
        task,
        phone: Some(phone),
    })
}

/// The account as the worker uses it, checked once.
pub(crate) struct Account {
    pub(crate) registrar: SipServer,
    /// Where REGISTERs go, in order of preference: the proxy (or the registrar), then the
    /// fallback proxy.
    servers: Vec<SipServer>,
    pub(crate) user: String,
    auth_user: String,
    password: Secret,
    ca_pem: Vec<u8>,
    interval_s: u32,
    pub(crate) display_name: String,
}

impl Account {
    fn from_config(config: &SipConfig, password: Option<Secret>) -> Result<Account, SipError> {
        let registrar = parse_server(&config.registrar)?;
        let first = match config.proxy.as_str() {
            "" => registrar.clone(),
            proxy => parse_server(proxy)?,
        };
        let mut servers = vec![first];
        if !config.fallback_proxy.is_empty() {
            servers.push(parse_server(&config.fallback_proxy)?);
        }
        if config.user.is_empty() {
            return Err(SipError::Setup(
                "sip.user is not set: the room has no address to register".to_owned(),
            ));
        }
        let password = password.ok_or_else(|| {
            SipError::Setup(
                "sip.password is not set (or the secret store lost it): set it again".to_owned(),
            )
        })?;
        Ok(Account {
            registrar,
            servers,
            user: config.user.clone(),
            auth_user: config.auth_user.clone(),
            password,
            ca_pem: read_ca_file(&config.ca_file)?,
            interval_s: config.register_interval_s,
            display_name: config.display_name.clone(),
        })
    }

    pub(crate) fn credential(&self) -> Credential {
        Credential {
            username: self.user.clone(),
            password: self.password.expose().to_owned(),
            // From the registrar's challenge.
            realm: None,
            auth_username: (!self.auth_user.is_empty()).then(|| self.auth_user.clone()),
        }
    }

    /// The REGISTER's Request-URI: the registrar's domain, over TLS (rsipstack picks the
    /// transport from the URI's `transport` parameter, not from the `sips` scheme).
    fn registrar_uri(&self) -> Result<Uri, SipError> {
        let uri = format!("sips:{};transport=tls", self.registrar.host_port());
        Uri::try_from(uri.as_str())
            .map_err(|e| SipError::Setup(format!("sip.registrar {uri} is not usable: {e}")))
    }
}

fn read_ca_file(path: &str) -> Result<Vec<u8>, SipError> {
    use std::io::Read;
    let error = |reason: String| SipError::CaFile {
        path: path.to_owned(),
        reason,
    };
    if path.is_empty() {
        return Err(SipError::Setup(
            "sip.ca_file is not set: the registrar's certificate cannot be verified".to_owned(),
        ));
    }
    let file = std::fs::File::open(path).map_err(|e| error(e.to_string()))?;
    let mut pem = Vec::new();
    file.take(CA_FILE_MAX_BYTES + 1)
        .read_to_end(&mut pem)
        .map_err(|e| error(e.to_string()))?;
    if pem.len() as u64 > CA_FILE_MAX_BYTES {
        return Err(error(format!("larger than {CA_FILE_MAX_BYTES} bytes")));
    }
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(error("holds no PEM certificate".to_owned()));
    }
    Ok(pem)
}

async fn run(
    room: RoomHandle,
    endpoint: rsipstack::transaction::Endpoint,
    cancel: CancellationToken,
    account: Arc<Account>,
    phone: Arc<SipPhone>,
) {
    let _stop = cancel.drop_guard();
    let mut status = SipStatus::starting(&account.registrar.to_string());
    let _ = room.sip_report(status.clone()).await;
    let serving = endpoint.inner.clone();
    tokio::spawn(async move {
        if let Err(e) = serving.serve().await {
            tracing::warn!("SIP endpoint stopped: {e}");
        }
    });
    match endpoint.incoming_transactions() {
        Ok(incoming) => {
            tokio::spawn(phone.clone().serve_incoming(incoming));
        }
        Err(e) => tracing::warn!("SIP: cannot take requests from the far end: {e}"),
    }

    // One registration (one Call-ID, rising CSeq) per server, kept across refreshes as RFC 3261
    // 10.2.4 asks.
    let mut registrations: Vec<Registration> = account
        .servers
        .iter()
        .map(|_| Registration::new(endpoint.inner.clone(), Some(account.credential())))
        .collect();
    let mut failures: u32 = 0;
    loop {
        match register_anywhere(
            &endpoint.inner,
            &account,
            &mut registrations,
            &room,
            &mut status,
        )
        .await
        {
            Ok((granted, route)) => {
                phone.set_route(Some(route));
                failures = 0;
                tokio::time::sleep(refresh_interval(granted)).await;
            }
            Err(e) => {
                phone.set_route(None);
                tracing::warn!("SIP registration: {e}");
                status.registration.state = RegistrationState::Failed;
                status.registration.expires_in_s = 0;
                status.registration.error = e.to_string();
                let _ = room.sip_report(status.clone()).await;
                failures = failures.saturating_add(1);
                tokio::time::sleep(retry_after(failures)).await;
            }
        }
    }
}

/// Registers through the first server that answers, in order of preference; returns the
/// lifetime the registrar granted. Only a server that cannot be reached passes the attempt on:
/// a refusal (wrong password) would be the same at the next.
async fn register_anywhere(
    endpoint: &EndpointInnerRef,
    account: &Account,
    registrations: &mut [Registration],
    room: &RoomHandle,
    status: &mut SipStatus,
) -> Result<(u32, Route), SipError> {
    let mut last = None;
    for (server, registration) in account.servers.iter().zip(registrations.iter_mut()) {
        status.registration.state = RegistrationState::Registering;
        status.registration.via = server.to_string();
        let _ = room.sip_report(status.clone()).await;
        match register_once(endpoint, account, server, registration).await {
            Ok((granted, route)) => {
                tracing::info!(
                    "SIP: registered sips:{}@{} through {server} for {granted} s",
                    account.user,
                    account.registrar.host_port()
                );
                status.registration.state = RegistrationState::Registered;
                status.registration.expires_in_s = granted;
                status.registration.error.clear();
                let _ = room.sip_report(status.clone()).await;
                return Ok((granted, route));
            }
            Err(e) if e.is_unreachable() => {
                tracing::warn!("SIP: {e}; trying the next server if there is one");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| SipError::Setup("no SIP server configured".to_owned())))
}

/// `step` of a registration with `server`, within [`REGISTER_TIMEOUT`]: a timeout or an
/// error is the server's, named in the error.
async fn within_timeout<T, E: std::fmt::Display>(
    server: &SipServer,
    step: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, SipError> {
    match tokio::time::timeout(REGISTER_TIMEOUT, step).await {
        Err(_) => Err(SipError::Timeout {
            server: server.to_string(),
            seconds: REGISTER_TIMEOUT.as_secs(),
        }),
        Ok(Err(e)) => Err(SipError::Unreachable {
            server: server.to_string(),
            reason: e.to_string(),
        }),
        Ok(Ok(value)) => Ok(value),
    }
}

async fn register_once(
    endpoint: &EndpointInnerRef,
    account: &Account,
    server: &SipServer,
    registration: &mut Registration,
) -> Result<(u32, Route), SipError> {
    let address = server.resolve().await?;
    // The certificate is checked against the configured CA and the server's name (or its
    // address, when configured as one): set per attempt, as the name differs per server.
    endpoint.transport_layer.set_tls_config(TlsConfig {
        ca_certs: Some(account.ca_pem.clone()),
        sni_hostname: server.tls_name(),
        ..TlsConfig::default()
    });
    // Connect first: rsipstack's REGISTER falls back to "no address" when the connection
    // fails, which would hide why (refused, certificate not trusted). The REGISTER then goes
    // over the connection made here.
    let mut target = SipAddr::from(address);
    target.r#type = Some(Transport::Tls);
    let connect = endpoint.transport_layer.lookup(&target, None);
    let (connection, _) = within_timeout(server, connect).await?;
    let local = connection.get_addr().addr.clone();
    registration.outbound_proxy = Some(address);
    // Calls in reach the room over this connection: the binding says TLS (rsipstack's own
    // Contact would be `sip:` without a transport, which a proxy would try over UDP).
    registration.contact = Some(rsipstack::sip::typed::Contact {
        display_name: None,
        uri: Uri {
            scheme: Some(rsipstack::sip::Scheme::Sips),
            auth: Some(rsipstack::sip::Auth {
                user: account.user.clone(),
                password: None,
            }),
            host_with_port: local.clone(),
            params: vec![rsipstack::sip::Param::Transport(Transport::Tls)],
            ..Default::default()
        },
        params: vec![],
    });
    let uri = account.registrar_uri()?;
    let attempt = registration.register(uri, Some(account.interval_s));
    let response = within_timeout(server, attempt).await?;
    match response.status_code {
        StatusCode::OK => Ok((
            registration.expires(),
            Route {
                server: target,
                local_ip: match &local.host {
                    rsipstack::sip::Host::IpAddr(ip) => Some(*ip),
                    rsipstack::sip::Host::Domain(_) => None,
                },
                local,
            },
        )),
        code => Err(SipError::Refused {
            server: server.to_string(),
            status: format!("{} {}", code.code(), code),
            hint: hint_of(code.code()),
        }),
    }
}

/// What a refusal usually means for the account, so that the status says what to fix.
fn hint_of(code: u16) -> &'static str {
    match code {
        401 | 407 => " (wrong sip.user, sip.auth_user or sip.password)",
        403 => " (the account may not register here)",
        404 => " (the registrar does not know sip.user)",
        423 => " (sip.register_interval_s is shorter than the registrar allows)",
        _ => "",
    }
}

/// 2 s doubling per failure in a row, at most [`RETRY_MAX`].
fn retry_after(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(5);
    (Duration::from_secs(2) * 2u32.pow(exponent)).min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_up_to_a_minute() {
        assert_eq!(retry_after(1), Duration::from_secs(2));
        assert_eq!(retry_after(2), Duration::from_secs(4));
        assert_eq!(retry_after(6), Duration::from_secs(60));
        assert_eq!(retry_after(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn an_account_without_password_or_ca_says_what_is_missing() {
        let mut config = SipConfig {
            registrar: "sips:sip.example.org".to_owned(),
            user: "room".to_owned(),
            ..SipConfig::default()
        };
        let Err(e) = Account::from_config(&config, None) else {
            panic!("no password accepted")
        };
        assert!(e.to_string().contains("sip.password"), "{e}");
        let Err(e) = Account::from_config(&config, Some(Secret::new("pw".to_owned()))) else {
            panic!("no CA accepted")
        };
        assert!(e.to_string().contains("sip.ca_file"), "{e}");
        config.ca_file = "/nonexistent/ca.pem".to_owned();
        let Err(e) = Account::from_config(&config, Some(Secret::new("pw".to_owned()))) else {
            panic!("missing CA file accepted")
        };
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        assert!(!e.to_string().contains("pw"), "{e}");
    }
}
