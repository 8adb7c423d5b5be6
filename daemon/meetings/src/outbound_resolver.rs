//! The HTTPS client's resolver under the outbound policy (`meeting.allowed_servers`): it
//! resolves once, keeps only allowed addresses and hands exactly those to the connector, so no
//! second lookup can change the answer between check and connection.

use std::sync::Arc;

use roomd_model::outbound::{OutboundPolicy, Refusal};
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// ureq's resolver under an [`OutboundPolicy`]: the host is checked before any lookup, the
/// addresses after it, and only allowed addresses reach the connector.
#[derive(Debug)]
pub(crate) struct PolicyResolver {
    policy: Arc<OutboundPolicy>,
    lookup: DefaultResolver,
}

impl PolicyResolver {
    pub(crate) fn new(policy: OutboundPolicy) -> PolicyResolver {
        PolicyResolver {
            policy: Arc::new(policy),
            lookup: DefaultResolver::default(),
        }
    }
}

/// A refusal travels through ureq as an io::Error (its resolver error type); the client
/// recognises it by downcasting.
fn refused(refusal: Refusal) -> ureq::Error {
    ureq::Error::Io(std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        refusal,
    ))
}

impl Resolver for PolicyResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or_default();
        self.policy.check_host(host).map_err(refused)?;
        let all = self.lookup.resolve(uri, config, timeout)?;
        let mut kept = self.lookup.empty();
        let mut first_refusal = None;
        for address in all.iter() {
            match self.policy.check_address(host, address.ip()) {
                Ok(()) => kept.push(*address),
                Err(refusal) => {
                    tracing::warn!("not connecting: {refusal}");
                    first_refusal.get_or_insert(refusal);
                }
            }
        }
        match first_refusal {
            Some(refusal) if kept.is_empty() => Err(refused(refusal)),
            _ => Ok(kept),
        }
    }
}
