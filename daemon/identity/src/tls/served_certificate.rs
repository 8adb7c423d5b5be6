//! The certificate chain the API serves, replaceable while roomd runs (an installed CA-issued
//! chain takes effect for the next handshake, without a restart).

use std::sync::{Arc, RwLock};

use roomd_base::sync::{read, write};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificate chain and key the TLS server presents; rustls asks it in each handshake.
#[derive(Debug)]
pub struct ServedCertificate {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ServedCertificate {
    /// Serves `certified` until it is replaced.
    pub fn new(certified: CertifiedKey) -> ServedCertificate {
        ServedCertificate {
            current: RwLock::new(Arc::new(certified)),
        }
    }

    /// What a handshake starting now gets.
    pub fn current(&self) -> Arc<CertifiedKey> {
        // A panic while holding the lock cannot leave a half-written Arc behind: keep serving.
        read(&self.current).clone()
    }

    /// Serves `certified` from the next handshake on; established connections keep theirs.
    pub fn replace(&self, certified: CertifiedKey) {
        *write(&self.current) = Arc::new(certified);
    }
}

impl ResolvesServerCert for ServedCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
