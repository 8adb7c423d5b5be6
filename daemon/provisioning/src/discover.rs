//! Finding the bundle's server by unicast DNS-SD (RFC 6763 over ordinary DNS, no multicast):
//! the SRV record `_roomd-provisioning._tcp.<domain>` names the server and port, its TXT record
//! `path=/…` the bundle's path, for each search domain of `/etc/resolv.conf` in turn (the domain
//! DHCP handed out, on most networks). The result is `https://<target>:<port><path>`.
//!
//! Whoever answers DNS can point the room at any server this way; that is why the bundle's
//! signature, not its origin, is what the room trusts.
//!
//! The resolver is `hickory-resolver` (maintained, pure Rust, tokio): the C library's resolver
//! has no SRV or TXT lookup, and reading resolv.conf the same way as the system does needs its
//! parser anyway.

use std::time::Duration;

use hickory_resolver::Resolver;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData};

/// The service's name.
pub(crate) const SERVICE: &str = "_roomd-provisioning._tcp";
/// How long one whole discovery may take.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest `path=` accepted.
const MAX_PATH_CHARS: usize = 1024;

/// Why no server was found; worth another attempt later.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// `/etc/resolv.conf` cannot be read.
    #[error("cannot read the DNS configuration (/etc/resolv.conf): {0}")]
    SystemConfig(String),
    /// It names no domain to search.
    #[error(
        "DNS-SD needs a search domain, and /etc/resolv.conf has no search or domain line \
         (set provisioning.url instead)"
    )]
    NoDomain,
    /// No domain has the service.
    #[error("no DNS-SD service found: no SRV record for {0}")]
    NotFound(String),
    /// The records are there but unusable.
    #[error("the DNS-SD records of {name} are unusable: {reason}")]
    Unusable {
        /// The service name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Took too long.
    #[error("DNS-SD lookup took longer than {} s", DISCOVERY_TIMEOUT.as_secs())]
    Timeout,
}

/// The bundle's URL from DNS-SD.
pub(crate) async fn discover() -> Result<String, DiscoveryError> {
    tokio::time::timeout(DISCOVERY_TIMEOUT, lookup())
        .await
        .map_err(|_| DiscoveryError::Timeout)?
}

async fn lookup() -> Result<String, DiscoveryError> {
    let (config, options) = hickory_resolver::system_conf::read_system_conf()
        .map_err(|e| DiscoveryError::SystemConfig(e.to_string()))?;
    let mut domains: Vec<Name> = config.domain().into_iter().cloned().collect();
    for domain in config.search() {
        if !domains.contains(domain) {
            domains.push(domain.clone());
        }
    }
    if domains.is_empty() {
        return Err(DiscoveryError::NoDomain);
    }
    let resolver = Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(options)
        .build()
        .map_err(|e| DiscoveryError::SystemConfig(e.to_string()))?;
    let mut tried = Vec::new();
    for domain in domains {
        let name = format!("{SERVICE}.{}", domain.to_utf8().trim_end_matches('.'));
        // Fully qualified: the service name is complete, no search list applies to it.
        let fqdn = format!("{name}.");
        let Ok(srv) = resolver.srv_lookup(fqdn.as_str()).await else {
            tried.push(name);
            continue;
        };
        // Lowest priority first, then the highest weight (RFC 2782, without the random
        // choice among equals: one server per site is the usual case).
        let Some((target, port)) = srv
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                RData::SRV(srv) => Some(srv),
                _ => None,
            })
            .min_by_key(|srv| (srv.priority, std::cmp::Reverse(srv.weight)))
            .map(|srv| (srv.target.to_utf8(), srv.port))
        else {
            tried.push(name);
            continue;
        };
        let unusable = |reason: String| DiscoveryError::Unusable {
            name: name.clone(),
            reason,
        };
        let target = target.trim_end_matches('.').to_owned();
        if target.is_empty() || port == 0 {
            return Err(unusable(
                "the SRV record says the service is not offered here".to_owned(),
            ));
        }
        let path = match resolver.txt_lookup(fqdn.as_str()).await {
            Ok(txt) => path_of(txt.answers().iter().filter_map(|r| match &r.data {
                RData::TXT(txt) => Some(txt),
                _ => None,
            }))
            .map_err(unusable)?,
            // No TXT record: the server's root.
            Err(_) => "/".to_owned(),
        };
        let url = format!("https://{target}:{port}{path}");
        roomd_model::config::check_provisioning_url(&url).map_err(unusable)?;
        return Ok(url);
    }
    Err(DiscoveryError::NotFound(tried.join(", ")))
}

/// The `path=` of the TXT records (RFC 6763 §6: `key=value` strings), `/` when none says.
fn path_of<'a>(
    records: impl Iterator<Item = &'a hickory_resolver::proto::rr::rdata::TXT>,
) -> Result<String, String> {
    for record in records {
        for entry in record.txt_data.iter() {
            let Some(path) = entry.strip_prefix(b"path=") else {
                continue;
            };
            let path =
                std::str::from_utf8(path).map_err(|_| "its TXT path= is not UTF-8".to_owned())?;
            if !path.starts_with('/')
                || path.chars().count() > MAX_PATH_CHARS
                || path.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(format!(
                    "its TXT path= {:?} is not an absolute path of at most {MAX_PATH_CHARS} \
                     characters",
                    path.chars().take(80).collect::<String>()
                ));
            }
            return Ok(path.to_owned());
        }
    }
    Ok("/".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::rdata::TXT;

    #[test]
    fn the_txt_path_is_taken_checked_or_defaults_to_the_root() {
        let txt = |entries: &[&str]| TXT::new(entries.iter().map(|e| (*e).to_owned()).collect());
        let records = [txt(&["txtvers=1", "path=/rooms/bundle.json"])];
        assert_eq!(path_of(records.iter()).unwrap(), "/rooms/bundle.json");
        assert_eq!(path_of([txt(&["txtvers=1"])].iter()).unwrap(), "/");
        assert!(path_of([txt(&["path=bundle.json"])].iter()).is_err());
        assert!(path_of([txt(&["path=/a b"])].iter()).is_err());
    }
}
