//! The provisioning worker: discover → fetch → verify → apply, once per start while no bundle
//! from the configured source has been applied, with retries.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::task::JoinHandle;

use crate::bundle::{self, BundleError, TrustKey, Verified};
use crate::discover::{self, DiscoveryError};
use crate::fetch::{self, FetchError};
use crate::state::{self, AppliedState, EnrolledRecord};
use roomd_base::backoff::{Backoff, upper_half};
use roomd_core::{CoreError, RoomHandle};
use roomd_identity::tls::DeviceIdentity;
use roomd_model::config::ProvisioningConfig;
use roomd_model::provisioning::{
    EnrolmentState, EnrolmentStatus, ProvisioningReport, ProvisioningState, ProvisioningStatus,
};

/// `applied.json`'s source when the bundle was found by DNS-SD.
const DNS_SD_SOURCE: &str = "dns-sd:_roomd-provisioning._tcp";
/// The first retry waits about a second; later ones double up to `provisioning.retry_max_s`.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// What the worker needs.
pub struct ProvisioningSetup {
    /// The room core: the configuration patch and `status.provisioning` go there.
    pub room: RoomHandle,
    /// The device identity: whose key the bundle must name.
    pub identity: Arc<DeviceIdentity>,
    /// `[provisioning]` as read at start.
    pub config: ProvisioningConfig,
    /// `system.state_dir`.
    pub state_dir: PathBuf,
    /// Told once a bundle was applied at this start and its enrolment (if any) was tried once,
    /// so that workers that read their configuration at start (the fleet channel) can start
    /// with what the bundle set, and with the certificate it enrolled.
    pub provisioned: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Starts the worker when provisioning is configured; `None` (and no `status.provisioning`)
/// when it is not.
pub fn start(setup: ProvisioningSetup) -> Option<JoinHandle<()>> {
    if !setup.config.is_on() {
        return None;
    }
    Some(tokio::spawn(run(setup)))
}

/// Why one attempt did not apply a bundle.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    /// The bundle is unacceptable: the room stays as it was.
    #[error(transparent)]
    Refused(#[from] BundleError),
    /// The bundle's configuration or CA certificates do not pass the checks.
    #[error("{0}")]
    Invalid(String),
    /// Something that may pass: network, server, disk.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// DNS-SD found no server (yet).
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The device could not do its part.
    #[error("{0}")]
    Failed(String),
}

async fn run(setup: ProvisioningSetup) {
    let ProvisioningSetup {
        room,
        identity,
        config,
        state_dir,
        mut provisioned,
    } = setup;
    // What the applied record is compared with: the configured URL, or DNS-SD (whose answer
    // may change from start to start without making the room fetch again).
    let source = match config.url.as_str() {
        "" => DNS_SD_SOURCE.to_owned(),
        url => url.to_owned(),
    };
    let mut shown = fetch::redact(&source);
    let mut status = ProvisioningStatus::starting(&shown);
    let applied = state::load(&state_dir);
    let server_ca =
        (!config.server_ca_file.is_empty()).then(|| PathBuf::from(&config.server_ca_file));
    let retry_max = Duration::from_secs(u64::from(config.retry_max_s));
    if let Some(applied) = applied.clone()
        && applied.source == source
    {
        // Provisioned before from this source: nothing to fetch at this start; an enrolment
        // that did not succeed yet goes on.
        status.state = ProvisioningState::Applied;
        status.serial = Some(applied.serial);
        if let Some(enrolled) = &applied.enrolled {
            status.enrolment = enrolled_status(enrolled);
        }
        report(&room, ProvisioningReport::Status(status.clone())).await;
        // Nothing new was applied: whoever waits for this start's bundle waits for nothing.
        drop(provisioned.take());
        enrolment(
            &room,
            &identity,
            &state_dir,
            server_ca.as_deref(),
            retry_max,
            applied,
            status,
            None,
        )
        .await;
        return;
    }
    status.serial = applied.as_ref().map(|a| a.serial);
    let trust_key = match read_trust_key(Path::new(&config.trust_key)) {
        Ok(key) => key,
        Err(e) => {
            status.state = ProvisioningState::Failed;
            status.error = e;
            report(&room, ProvisioningReport::Status(status)).await;
            return;
        }
    };
    let mut backoff = Backoff::new(FIRST_RETRY, retry_max);
    // The same refusal again (the server still has the same bad bundle) is one event, not one
    // per retry.
    let mut last_refusal: Option<String> = None;
    loop {
        let url = if config.url.is_empty() {
            status.state = ProvisioningState::Searching;
            report(&room, ProvisioningReport::Status(status.clone())).await;
            match discover::discover().await {
                Ok(url) => {
                    shown = fetch::redact(&url);
                    status.source = shown.clone();
                    Ok(url)
                }
                Err(e) => Err(e),
            }
        } else {
            Ok(config.url.clone())
        };
        let attempt = match url {
            Ok(url) => {
                status.state = ProvisioningState::Fetching;
                report(&room, ProvisioningReport::Status(status.clone())).await;
                attempt(
                    &room,
                    &identity,
                    &trust_key,
                    (&url, &source),
                    server_ca.as_deref(),
                    &state_dir,
                    status.serial,
                )
                .await
            }
            Err(e) => Err(AttemptError::Discovery(e)),
        };
        let delay = match attempt {
            Ok(applied) => {
                let serial = applied.serial;
                tracing::info!("provisioning: applied bundle serial {serial} from {shown}");
                status.state = ProvisioningState::Applied;
                status.serial = Some(serial);
                status.error.clear();
                report(
                    &room,
                    ProvisioningReport::Applied {
                        source: shown.clone(),
                        serial,
                        status: status.clone(),
                    },
                )
                .await;
                enrolment(
                    &room,
                    &identity,
                    &state_dir,
                    server_ca.as_deref(),
                    retry_max,
                    applied,
                    status,
                    provisioned.take(),
                )
                .await;
                return;
            }
            Err(e @ (AttemptError::Refused(_) | AttemptError::Invalid(_))) => {
                let reason = e.to_string();
                tracing::warn!("provisioning: refused the bundle from {shown}: {reason}");
                status.state = ProvisioningState::Refused;
                status.error = reason.clone();
                let repeated = last_refusal.as_deref() == Some(reason.as_str());
                last_refusal = Some(reason.clone());
                let update = if repeated {
                    ProvisioningReport::Status(status.clone())
                } else {
                    ProvisioningReport::Refused {
                        source: shown.clone(),
                        reason,
                        status: status.clone(),
                    }
                };
                report(&room, update).await;
                // The same bundle will be refused again: ask only as often as the slowest
                // retry, in case the customer puts a corrected one in its place.
                upper_half(retry_max)
            }
            Err(e) => {
                tracing::warn!("provisioning: {e}");
                last_refusal = None;
                status.state = ProvisioningState::Failed;
                status.error = e.to_string();
                report(&room, ProvisioningReport::Status(status.clone())).await;
                backoff.next_delay()
            }
        };
        tokio::time::sleep(delay).await;
    }
}

/// One fetch from `url`, verification and application, recorded as coming from `source`.
/// Returns what was recorded.
async fn attempt(
    room: &RoomHandle,
    identity: &DeviceIdentity,
    trust_key: &TrustKey,
    (url, source): (&str, &str),
    server_ca: Option<&Path>,
    state_dir: &Path,
    applied_serial: Option<u64>,
) -> Result<AppliedState, AttemptError> {
    let url = url.to_owned();
    let ca = server_ca.map(Path::to_path_buf);
    let bytes = tokio::task::spawn_blocking(move || fetch::fetch(&url, ca.as_deref()))
        .await
        .map_err(|e| AttemptError::Failed(format!("the fetch task failed: {e}")))??;
    let Verified {
        payload,
        config_patch,
    } = bundle::verify(
        &bytes,
        trust_key,
        &identity.key().fingerprint(),
        OffsetDateTime::now_utc(),
        applied_serial,
    )?;
    let ca_pem = check_ca_certificates(&payload.ca_certificates)?;
    // The same rules the core applies, on the configuration as it is now: a bundle whose
    // configuration is refused changes nothing at all, its CA file included.
    if let Some(patch) = &config_patch {
        room.config()
            .apply_provisioning_patch(patch)
            .map_err(|e| AttemptError::Invalid(format!("the bundle's configuration: {e}")))?;
    }
    let ca_before = match &ca_pem {
        Some(pem) => Some(state::write_ca(state_dir, pem).map_err(AttemptError::Failed)?),
        None => None,
    };
    if let Some(patch) = config_patch
        && let Err(e) = room.provisioning_patch(patch).await
    {
        if let Some(before) = ca_before {
            state::restore_ca(state_dir, before);
        }
        return Err(match e {
            CoreError::Config(e) => {
                AttemptError::Invalid(format!("the bundle's configuration: {e}"))
            }
            e => AttemptError::Failed(format!("cannot apply the bundle's configuration: {e}")),
        });
    }
    let record = AppliedState {
        serial: payload.serial,
        source: source.to_owned(),
        applied_at: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
        enrolment_pending: payload.enrolment.map(|e| e.acme),
        enrolled: None,
    };
    save(state_dir, &record)
        .await
        .map_err(|e| AttemptError::Failed(format!("cannot record the applied bundle: {e}")))?;
    Ok(record)
}

async fn save(state_dir: &Path, record: &AppliedState) -> Result<(), String> {
    let (dir, record) = (state_dir.to_owned(), record.clone());
    tokio::task::spawn_blocking(move || state::save(&dir, &record))
        .await
        .map_err(|e| format!("the state task failed: {e}"))?
}

fn enrolled_status(enrolled: &EnrolledRecord) -> EnrolmentStatus {
    EnrolmentStatus {
        state: EnrolmentState::Enrolled,
        issuer: enrolled.issuer.clone(),
        not_after: enrolled.not_after.clone(),
        error: String::new(),
    }
}

/// Runs the applied bundle's enrolment, if one is pending, until it succeeds (retried with the
/// same backoff as fetching); records the result so that a restart neither repeats a done
/// enrolment nor forgets a pending one.
#[allow(clippy::too_many_arguments)] // the worker's state, passed on once
async fn enrolment(
    room: &RoomHandle,
    identity: &Arc<DeviceIdentity>,
    state_dir: &Path,
    server_ca: Option<&Path>,
    retry_max: Duration,
    mut applied: AppliedState,
    mut status: ProvisioningStatus,
    mut provisioned: Option<tokio::sync::oneshot::Sender<()>>,
) {
    let Some(acme) = applied.enrolment_pending.clone() else {
        if let Some(tx) = provisioned {
            let _ = tx.send(());
        }
        return;
    };
    // The ACME server is verified against the bundle's CA certificates and the server CA,
    // besides Mozilla's roots.
    use rustls_pki_types::pem::PemObject;
    let mut roots = Vec::new();
    for path in [
        Some(state::dir(state_dir).join(state::CA_FILE)),
        server_ca.map(Path::to_path_buf),
    ]
    .into_iter()
    .flatten()
    {
        if let Ok(pem) = std::fs::read(&path) {
            roots.extend(
                rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
                    .filter_map(Result::ok)
                    .map(|c| c.into_owned()),
            );
        }
    }
    let mut backoff = Backoff::new(FIRST_RETRY, retry_max);
    loop {
        status.enrolment.state = EnrolmentState::Enrolling;
        report(room, ProvisioningReport::Status(status.clone())).await;
        match crate::enrol::enrol(&acme, identity.clone(), &roots).await {
            Ok(enrolled) => {
                tracing::info!(
                    "provisioning: enrolled the device key with {}; certificate from {} until {}",
                    acme.directory,
                    enrolled.issuer,
                    enrolled.not_after
                );
                let record = EnrolledRecord {
                    issuer: enrolled.issuer,
                    not_after: enrolled.not_after,
                };
                status.enrolment = enrolled_status(&record);
                applied.enrolment_pending = None;
                applied.enrolled = Some(record);
                if let Err(e) = save(state_dir, &applied).await {
                    tracing::warn!("provisioning: cannot record the enrolment: {e}");
                }
                // The served certificate changed: status.identity says so.
                let _ = room.set_identity(identity.status()).await;
                report(room, ProvisioningReport::Status(status)).await;
                if let Some(tx) = provisioned.take() {
                    let _ = tx.send(());
                }
                return;
            }
            Err(e) => {
                tracing::warn!(
                    "provisioning: enrolment with {} failed: {e}",
                    acme.directory
                );
                status.enrolment.state = EnrolmentState::Failed;
                status.enrolment.error = e;
                report(room, ProvisioningReport::Status(status.clone())).await;
                // The rest of the bundle holds: let the room go on with its own certificate
                // while the enrolment is retried.
                if let Some(tx) = provisioned.take() {
                    let _ = tx.send(());
                }
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// The CA certificates as one PEM file, each checked to be one parseable certificate.
fn check_ca_certificates(pems: &[String]) -> Result<Option<String>, AttemptError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    if pems.is_empty() {
        return Ok(None);
    }
    let mut out = String::new();
    for (i, pem) in pems.iter().enumerate() {
        let certs: Vec<CertificateDer<'_>> = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| AttemptError::Invalid(format!("ca_certificates[{i}] is not PEM: {e}")))?;
        let [cert] = certs.as_slice() else {
            return Err(AttemptError::Invalid(format!(
                "ca_certificates[{i}] must hold exactly one certificate"
            )));
        };
        x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| {
            AttemptError::Invalid(format!("ca_certificates[{i}] is not a certificate: {e}"))
        })?;
        out.push_str(pem.trim());
        out.push('\n');
    }
    Ok(Some(out))
}

fn read_trust_key(path: &Path) -> Result<TrustKey, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read provisioning.trust_key {}: {e}", path.display()))?;
    TrustKey::from_pem(&pem)
        .map_err(|e| format!("provisioning.trust_key {} is unusable: {e}", path.display()))
}

async fn report(room: &RoomHandle, report: ProvisioningReport) {
    // An error means the core stopped: roomd is shutting down.
    let _ = room.provisioning_report(report).await;
}
