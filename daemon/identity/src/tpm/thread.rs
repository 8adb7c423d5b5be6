//! The thread that owns the TPM context, and the handle the rest of roomd uses to reach it.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use tss_esapi::Context;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::handles::KeyHandle;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{Digest, Signature, SignatureScheme};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;

use super::attestation::{self, AttestationIdentity, Quote};
use super::{AK_HANDLE, EcdsaSignature, P256PublicKey, TpmError, device_key, sealing};

/// Requests that may wait for the TPM thread at once. Callers other than TLS handshakes block
/// until there is room (they are few: attestation, sealing, certificates); the bound keeps a
/// flood from growing the queue without limit.
const REQUEST_QUEUE: usize = 32;

/// Handshake signatures that may be waiting or in progress at once. A hardware TPM signs in
/// about 30 ms, so the last of them waits about a quarter of a second; one more is refused at
/// once (the handshake fails) instead of queueing behind a flood of new connections.
pub const MAX_WAITING_HANDSHAKE_SIGNATURES: usize = 8;

/// One request to the TPM thread, with the channel its answer goes back on.
enum Request {
    SignDigest {
        digest: [u8; 32],
        reply: mpsc::SyncSender<Result<EcdsaSignature, TpmError>>,
    },
    Quote {
        nonce: Vec<u8>,
        reply: mpsc::SyncSender<Result<Quote, TpmError>>,
    },
    Seal {
        secret: Vec<u8>,
        reply: mpsc::SyncSender<Result<Vec<u8>, TpmError>>,
    },
    Unseal {
        blob: Vec<u8>,
        reply: mpsc::SyncSender<Result<Vec<u8>, TpmError>>,
    },
    ActivateCredential {
        credential_blob: Vec<u8>,
        encrypted_secret: Vec<u8>,
        reply: mpsc::SyncSender<Result<Vec<u8>, TpmError>>,
    },
}

/// What the thread reports once the TPM is open.
struct Opened {
    device_key: P256PublicKey,
    attestation: Option<AttestationIdentity>,
}

/// A handle to the TPM thread. Cloning it is cheap; the thread ends (and flushes and closes its
/// handles) when the last clone is dropped.
#[derive(Clone)]
pub struct Tpm {
    requests: mpsc::SyncSender<Request>,
    /// Handshake signatures waiting or in progress (bounded by `MAX_WAITING_HANDSHAKE_SIGNATURES`).
    handshake_signatures: Arc<AtomicUsize>,
    tcti: String,
    device_key: P256PublicKey,
    attestation: Option<Arc<AttestationIdentity>>,
}

impl std::fmt::Debug for Tpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tpm")
            .field("tcti", &self.tcti)
            .field("device_key", &self.device_key.fingerprint())
            .finish()
    }
}

impl Tpm {
    /// Opens the TPM at `tcti` (e.g. `device:/dev/tpmrm0`, `swtpm:host=127.0.0.1,port=2321`) on
    /// a new thread, and finds or creates the device key at persistent handle `key_handle`.
    pub fn open(tcti: &str, key_handle: u32) -> Result<Tpm, TpmError> {
        let name = TctiNameConf::from_str(tcti).map_err(|source| TpmError::BadTcti {
            tcti: tcti.to_owned(),
            source,
        })?;
        let (requests, inbox) = mpsc::sync_channel(REQUEST_QUEUE);
        let (started, start_result) = mpsc::sync_channel(1);
        let tcti_owned = tcti.to_owned();
        std::thread::Builder::new()
            .name("tpm".to_owned())
            .spawn(move || {
                let opened = Context::new(name)
                    .map_err(|source| TpmError::Open {
                        tcti: tcti_owned,
                        source,
                    })
                    .and_then(|mut context| {
                        let key = device_key::find_or_create(&mut context, key_handle)?;
                        Ok((context, key))
                    });
                match opened {
                    Ok((mut context, (key_handle, device_key))) => {
                        // Without attestation the device still has its identity: report, go on.
                        let ak = match attestation::find_or_create_ak(&mut context, AK_HANDLE) {
                            Ok(ak) => Some(ak),
                            Err(e) => {
                                tracing::warn!("attestation is unavailable: {e}");
                                None
                            }
                        };
                        let opened = Opened {
                            device_key,
                            attestation: ak.as_ref().map(|(_, identity)| identity.clone()),
                        };
                        if started.send(Ok(opened)).is_ok() {
                            serve(context, key_handle, ak.map(|(handle, _)| handle), inbox);
                        }
                    }
                    Err(e) => {
                        let _ = started.send(Err(e));
                    }
                }
            })
            .map_err(TpmError::Spawn)?;
        let opened = start_result.recv().map_err(|_| TpmError::ThreadGone)??;
        Ok(Tpm {
            requests,
            handshake_signatures: Arc::new(AtomicUsize::new(0)),
            tcti: tcti.to_owned(),
            device_key: opened.device_key,
            attestation: opened.attestation.map(Arc::new),
        })
    }

    /// The TCTI this TPM was opened with, for messages.
    pub fn tcti(&self) -> &str {
        &self.tcti
    }

    /// The device key's public part.
    pub fn device_key(&self) -> &P256PublicKey {
        &self.device_key
    }

    /// The EK certificate and attestation key, unless attestation could not be set up.
    pub fn attestation(&self) -> Option<&AttestationIdentity> {
        self.attestation.as_deref()
    }

    /// A quote over the boot PCRs with `nonce` as qualifying data, signed by the AK.
    pub fn quote(&self, nonce: Vec<u8>) -> Result<Quote, TpmError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .send(Request::Quote { nonce, reply })
            .map_err(|_| TpmError::ThreadGone)?;
        answer.recv().map_err(|_| TpmError::ThreadGone)?
    }

    /// Answers a verifier's credential challenge (TPM2_ActivateCredential with the AK and EK).
    pub fn activate_credential(
        &self,
        credential_blob: Vec<u8>,
        encrypted_secret: Vec<u8>,
    ) -> Result<Vec<u8>, TpmError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .send(Request::ActivateCredential {
                credential_blob,
                encrypted_secret,
                reply,
            })
            .map_err(|_| TpmError::ThreadGone)?;
        answer.recv().map_err(|_| TpmError::ThreadGone)?
    }

    /// Seals `secret` (at most `MAX_SEALED_BYTES`) to this TPM; the blob opens only here.
    pub fn seal(&self, secret: Vec<u8>) -> Result<Vec<u8>, TpmError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .send(Request::Seal { secret, reply })
            .map_err(|_| TpmError::ThreadGone)?;
        answer.recv().map_err(|_| TpmError::ThreadGone)?
    }

    /// Opens a blob made by `seal` on this TPM.
    pub fn unseal(&self, blob: Vec<u8>) -> Result<Vec<u8>, TpmError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .send(Request::Unseal { blob, reply })
            .map_err(|_| TpmError::ThreadGone)?;
        answer.recv().map_err(|_| TpmError::ThreadGone)?
    }

    /// Signs a SHA-256 digest with the device key. Blocks the calling thread while the TPM
    /// works (a few milliseconds on swtpm, tens on a hardware TPM).
    pub fn sign_digest(&self, digest: [u8; 32]) -> Result<EcdsaSignature, TpmError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .send(Request::SignDigest { digest, reply })
            .map_err(|_| TpmError::ThreadGone)?;
        answer.recv().map_err(|_| TpmError::ThreadGone)?
    }

    /// Signs a SHA-256 digest for a TLS handshake: like `sign_digest`, but when
    /// `MAX_WAITING_HANDSHAKE_SIGNATURES` are already waiting it fails at once with
    /// `TpmError::Busy` rather than queue behind them. A flood of new connections then costs
    /// refused handshakes, not a queue that grows until every client times out.
    pub fn sign_digest_for_handshake(&self, digest: [u8; 32]) -> Result<EcdsaSignature, TpmError> {
        let waiting = WaitingSignature::enter(&self.handshake_signatures)?;
        let (reply, answer) = mpsc::sync_channel(1);
        self.requests
            .try_send(Request::SignDigest { digest, reply })
            .map_err(|e| match e {
                mpsc::TrySendError::Full(_) => TpmError::Busy {
                    waiting: waiting.count,
                },
                mpsc::TrySendError::Disconnected(_) => TpmError::ThreadGone,
            })?;
        answer.recv().map_err(|_| TpmError::ThreadGone)?
    }
}

/// One handshake signature counted as waiting, from the request until its answer.
struct WaitingSignature<'a> {
    counter: &'a AtomicUsize,
    count: usize,
}

impl<'a> WaitingSignature<'a> {
    fn enter(counter: &'a AtomicUsize) -> Result<WaitingSignature<'a>, TpmError> {
        let before = counter.fetch_add(1, Ordering::AcqRel);
        if before >= MAX_WAITING_HANDSHAKE_SIGNATURES {
            counter.fetch_sub(1, Ordering::AcqRel);
            return Err(TpmError::Busy { waiting: before });
        }
        Ok(WaitingSignature {
            counter,
            count: before + 1,
        })
    }
}

impl Drop for WaitingSignature<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers requests one at a time until every `Tpm` handle is gone.
fn serve(
    mut context: Context,
    device_key: KeyHandle,
    ak: Option<KeyHandle>,
    inbox: mpsc::Receiver<Request>,
) {
    while let Ok(request) = inbox.recv() {
        match request {
            Request::SignDigest { digest, reply } => {
                let _ = reply.send(sign_digest(&mut context, device_key, digest));
            }
            Request::Quote { nonce, reply } => {
                let quote = match ak {
                    Some(ak) => attestation::quote(&mut context, ak, &nonce),
                    None => Err(TpmError::NoAttestation),
                };
                let _ = reply.send(quote);
            }
            Request::Seal { secret, reply } => {
                let _ = reply.send(sealing::seal(&mut context, &secret));
            }
            Request::Unseal { blob, reply } => {
                let _ = reply.send(sealing::unseal(&mut context, &blob));
            }
            Request::ActivateCredential {
                credential_blob,
                encrypted_secret,
                reply,
            } => {
                let credential = match ak {
                    Some(ak) => attestation::activate_credential(
                        &mut context,
                        ak,
                        &credential_blob,
                        &encrypted_secret,
                    ),
                    None => Err(TpmError::NoAttestation),
                };
                let _ = reply.send(credential);
            }
        }
    }
}

fn sign_digest(
    context: &mut Context,
    key: KeyHandle,
    digest: [u8; 32],
) -> Result<EcdsaSignature, TpmError> {
    let command = |action| move |source| TpmError::Command { action, source };
    let digest = Digest::try_from(digest.to_vec()).map_err(command("accept a digest"))?;
    // A null ticket: the key is unrestricted, so the TPM need not have hashed the message.
    let validation = TPMT_TK_HASHCHECK {
        tag: TPM2_ST_HASHCHECK,
        hierarchy: TPM2_RH_NULL,
        digest: Default::default(),
    }
    .try_into()
    .map_err(command("accept a null hash ticket"))?;
    let signature = context
        .execute_with_session(Some(AuthSession::Password), |context| {
            context.sign(key, digest, SignatureScheme::Null, validation)
        })
        .map_err(command("sign with the device key"))?;
    match signature {
        Signature::EcDsa(ecc) => Ok(EcdsaSignature {
            r: ecc.signature_r().value().to_vec(),
            s: ecc.signature_s().value().to_vec(),
        }),
        _ => Err(TpmError::Unexpected {
            what: "a signature",
        }),
    }
}
