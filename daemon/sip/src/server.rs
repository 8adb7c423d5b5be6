//! The SIP servers of `[sip]`: parsed once, resolved per attempt.

use std::net::SocketAddr;

use roomd_model::config::check_sip_server;

use crate::SipError;

/// A `sips:host[:port]` server from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipServer {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port of its TLS listener.
    pub port: u16,
}

/// Parses a `sips:host[:port]` value of `[sip]` (the configuration already checked it).
pub fn parse_server(value: &str) -> Result<SipServer, SipError> {
    let (host, port) = check_sip_server(value).map_err(SipError::Setup)?;
    Ok(SipServer { host, port })
}

impl SipServer {
    /// `host:port` as it goes into a SIP URI (IPv6 in brackets).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The name the server's certificate must carry: its host name, or `None` for an IP
    /// address (then the certificate must carry the address).
    pub fn tls_name(&self) -> Option<String> {
        match self.host.parse::<std::net::IpAddr>() {
            Ok(_) => None,
            Err(_) => Some(self.host.clone()),
        }
    }

    /// Resolves the server to the first address DNS gives (SRV/NAPTR are not used: the port
    /// is the configured one).
    pub async fn resolve(&self) -> Result<SocketAddr, SipError> {
        let unreachable = |reason: String| SipError::Unreachable {
            server: format!("sips:{}", self.host_port()),
            reason,
        };
        let mut addrs = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| unreachable(format!("cannot resolve {}: {e}", self.host)))?;
        addrs
            .next()
            .ok_or_else(|| unreachable(format!("{} has no address", self.host)))
    }
}

impl std::fmt::Display for SipServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sips:{}", self.host_port())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_parse_and_print_as_sips_uris() {
        let server = parse_server("sips:[2001:db8::5]:5071").unwrap();
        assert_eq!(server.to_string(), "sips:[2001:db8::5]:5071");
        assert_eq!(server.tls_name(), None);
        let server = parse_server("sips:sip.example.org").unwrap();
        assert_eq!(server.port, 5061);
        assert_eq!(server.tls_name().as_deref(), Some("sip.example.org"));
        assert!(parse_server("sip:sip.example.org").is_err());
    }
}
