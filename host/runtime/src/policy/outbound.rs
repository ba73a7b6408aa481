//! Where a step may send HTTP requests: the policy's `outbound` allow-list.
//!
//! Outbound HTTP is denied by default. A policy allows destinations by
//! scheme, host and port, written as Spin's `allowed_outbound_hosts` are:
//!
//! ```yaml
//! outbound:
//!   - https://api.example.com        # port 443 (the scheme's default)
//!   - http://*.internal:8080         # any subdomain of .internal (not `internal` itself)
//!   - https://hooks.example.com:*    # any port
//!   - "*://status.example.com"       # http on 80 or https on 443
//!   - http://127.0.0.1:8080          # loopback: only when named exactly
//! ```
//!
//! Matching a rule is not the whole check: the host also resolves the name
//! and refuses a request when any address it resolves to is loopback,
//! link-local (cloud metadata at 169.254.169.254 among them), unspecified,
//! multicast or the cluster's API server, unless the rule that allowed it
//! names that host or address literally (no wildcard). That stops a
//! wildcard rule, or a DNS answer that changes between check and connect,
//! from reaching the host's own services ([`Outbound::special_address`]).

use std::fmt;
use std::net::IpAddr;

use super::{PolicyError, Result};

/// A scheme a rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemeRule {
    /// `http` only.
    Http,
    /// `https` only.
    Https,
    /// `*`: both.
    Any,
}

/// A host a rule allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    /// One host name (lowercase) or IP address, exactly.
    Exact(String),
    /// `*.SUFFIX`: any name ending in `.SUFFIX` (not SUFFIX itself).
    Subdomains(String),
    /// `*`: any host.
    Any,
}

/// A port a rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRule {
    /// The scheme's default port (80 for http, 443 for https).
    Default,
    /// This port.
    Port(u16),
    /// `*`: any port.
    Any,
}

/// One entry of the allow-list, as written (`https://*.example.com:8443`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRule {
    /// The entry as written, for messages.
    pub text: String,
    /// Allowed scheme.
    pub scheme: SchemeRule,
    /// Allowed host.
    pub host: HostRule,
    /// Allowed port.
    pub port: PortRule,
}

/// The destination of one request, as the allow-list sees it.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// `http` or `https`.
    pub https: bool,
    /// The host: a lowercase name or an IP address (IPv6 without brackets).
    pub host: &'a str,
    /// The port (the scheme's default when the URL has none).
    pub port: u16,
}

impl Destination<'_> {
    /// The scheme's name.
    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }
}

impl fmt::Display for Destination<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme(), self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme(), self.host, self.port)
        }
    }
}

impl OutboundRule {
    /// Parses one entry: `SCHEME://HOST[:PORT]` with `SCHEME` `http`,
    /// `https` or `*`, `HOST` a name, `*.SUFFIX`, `*` or an IP address
    /// (`[::1]` for IPv6), `PORT` a number or `*`. No path.
    ///
    /// # Errors
    /// A message saying what is wrong and how an entry is written.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let how = "write SCHEME://HOST[:PORT], e.g. \"https://api.example.com\", \"http://*.internal:8080\" or \"https://hooks.example.com:*\"";
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("{text:?} has no scheme; {how}"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => SchemeRule::Http,
            "https" => SchemeRule::Https,
            "*" => SchemeRule::Any,
            other => {
                return Err(format!(
                    "{text:?}: scheme {other:?} is not http, https or *; {how}"
                ));
            }
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "{text:?}: an entry names a scheme, host and port only (no path, query or user); {how}"
            ));
        }
        let (host, port) = split_host_port(rest).ok_or_else(|| format!("{text:?}: {how}"))?;
        let port = match port {
            None => PortRule::Default,
            Some("*") => PortRule::Any,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => PortRule::Port(n),
                _ => {
                    return Err(format!(
                        "{text:?}: port {p:?} is not a number from 1 to 65535 or *; {how}"
                    ));
                }
            },
        };
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostRule::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if !valid_name(suffix) {
                return Err(format!("{text:?}: {suffix:?} is not a host name; {how}"));
            }
            HostRule::Subdomains(suffix.to_string())
        } else if host.parse::<IpAddr>().is_ok() || valid_name(&host) {
            HostRule::Exact(host)
        } else {
            return Err(format!(
                "{text:?}: {host:?} is not a host name, IP address, *.SUFFIX or *; {how}"
            ));
        };
        Ok(Self {
            text: text.to_string(),
            scheme,
            host,
            port,
        })
    }

    /// True when this rule allows `to`.
    pub fn allows(&self, to: &Destination<'_>) -> bool {
        let scheme = match self.scheme {
            SchemeRule::Http => !to.https,
            SchemeRule::Https => to.https,
            SchemeRule::Any => true,
        };
        let port = match self.port {
            PortRule::Any => true,
            PortRule::Port(p) => p == to.port,
            PortRule::Default => to.port == if to.https { 443 } else { 80 },
        };
        let host = match &self.host {
            HostRule::Any => true,
            HostRule::Exact(h) => same_host(h, to.host),
            HostRule::Subdomains(suffix) => to
                .host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        };
        scheme && port && host
    }

    /// True when the rule names its host literally (no wildcard): only
    /// such a rule reaches a special address ([`Outbound::special_address`]).
    pub fn is_literal(&self) -> bool {
        matches!(self.host, HostRule::Exact(_))
    }
}

/// `a` and `b` name the same host: equal names, or equal addresses however
/// written.
fn same_host(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// `host[:port]` or `[v6][:port]`.
fn split_host_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(after.strip_prefix(':')?))),
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(port))),
        Some(_) => None,
        None => Some((s, None)),
    }
    .filter(|(h, _)| !h.is_empty())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Why an address may not be reached through a wildcard rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecialAddress {
    /// 127.0.0.0/8, ::1: the host itself.
    Loopback,
    /// 169.254.0.0/16, fe80::/10: link-local, where cloud metadata lives.
    LinkLocal,
    /// 0.0.0.0, ::: reaches the host itself on most systems.
    Unspecified,
    /// Multicast and broadcast.
    Multicast,
    /// The cluster's API server.
    ApiServer,
}

impl fmt::Display for SpecialAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Loopback => "a loopback address (the host itself)",
            Self::LinkLocal => "a link-local address (where cloud metadata services live)",
            Self::Unspecified => "the unspecified address (the host itself)",
            Self::Multicast => "a multicast or broadcast address",
            Self::ApiServer => "the cluster's API server",
        })
    }
}

/// The run's outbound allow-list (empty: every request is refused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outbound {
    /// The rules, in the policy's order.
    pub rules: Vec<OutboundRule>,
}

impl Outbound {
    /// Parses the policy's `outbound` entries; errors name the entry
    /// (`outbound[1]`).
    ///
    /// # Errors
    /// [`PolicyError::Field`] for an entry that does not parse.
    pub fn parse(entries: &[String]) -> Result<Self> {
        let rules = entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                OutboundRule::parse(e).map_err(|message| PolicyError::Field {
                    field: format!("outbound[{i}]"),
                    message,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { rules })
    }

    /// The first rule allowing `to`, if any.
    pub fn rule_for(&self, to: &Destination<'_>) -> Option<&OutboundRule> {
        self.rules.iter().find(|r| r.allows(to))
    }

    /// The list as written, for messages: `[https://a, http://*.b:8080]`,
    /// or a sentence when it is empty.
    pub fn describe(&self) -> String {
        if self.rules.is_empty() {
            return "the policy's outbound allow-list is empty, so outbound HTTP is denied; \
                    add the destination to `outbound:` in the step policy, e.g. \
                    outbound: [\"https://api.example.com\"]"
                .into();
        }
        let list: Vec<&str> = self.rules.iter().map(|r| r.text.as_str()).collect();
        format!(
            "the policy's outbound allow-list is [{}]; add the destination to `outbound:` in the step policy to allow it",
            list.join(", ")
        )
    }

    /// Whether `ip` is an address only a literal rule reaches, and why.
    /// `api_servers` are the addresses of the cluster's API server.
    pub fn special_address(ip: IpAddr, api_servers: &[IpAddr]) -> Option<SpecialAddress> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        if api_servers.contains(&ip) {
            return Some(SpecialAddress::ApiServer);
        }
        match ip {
            IpAddr::V4(v4) if v4.is_loopback() => Some(SpecialAddress::Loopback),
            IpAddr::V4(v4) if v4.is_link_local() => Some(SpecialAddress::LinkLocal),
            IpAddr::V4(v4) if v4.is_unspecified() => Some(SpecialAddress::Unspecified),
            IpAddr::V4(v4) if v4.is_multicast() || v4.is_broadcast() => {
                Some(SpecialAddress::Multicast)
            }
            IpAddr::V6(v6) if v6.is_loopback() => Some(SpecialAddress::Loopback),
            IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(SpecialAddress::LinkLocal),
            // fd00:ec2::254, the IPv6 address of EC2's metadata service.
            IpAddr::V6(v6) if v6.segments() == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] => {
                Some(SpecialAddress::LinkLocal)
            }
            IpAddr::V6(v6) if v6.is_unspecified() => Some(SpecialAddress::Unspecified),
            IpAddr::V6(v6) if v6.is_multicast() => Some(SpecialAddress::Multicast),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(https: bool, host: &str, port: u16) -> Destination<'_> {
        Destination { https, host, port }
    }

    fn rule(text: &str) -> OutboundRule {
        OutboundRule::parse(text).unwrap()
    }

    #[test]
    fn rules_match_scheme_host_and_port() {
        let api = rule("https://api.example.com");
        assert!(api.allows(&to(true, "api.example.com", 443)));
        assert!(!api.allows(&to(false, "api.example.com", 80)));
        assert!(!api.allows(&to(true, "api.example.com", 8443)));
        assert!(!api.allows(&to(true, "evil.api.example.com", 443)));
        assert!(api.is_literal());

        let internal = rule("http://*.internal:8080");
        assert!(internal.allows(&to(false, "db.internal", 8080)));
        assert!(internal.allows(&to(false, "a.b.internal", 8080)));
        assert!(!internal.allows(&to(false, "internal", 8080)));
        assert!(!internal.allows(&to(false, "evilinternal", 8080)));
        assert!(!internal.allows(&to(false, "db.internal", 80)));
        assert!(!internal.is_literal());

        let any_port = rule("HTTPS://Hooks.Example.com:*");
        assert!(any_port.allows(&to(true, "hooks.example.com", 1234)));
        let any_scheme = rule("*://status.example.com");
        assert!(any_scheme.allows(&to(false, "status.example.com", 80)));
        assert!(any_scheme.allows(&to(true, "status.example.com", 443)));
        assert!(!any_scheme.allows(&to(false, "status.example.com", 443)));
        let v6 = rule("http://[::1]:9000");
        assert!(v6.allows(&to(false, "::1", 9000)));
        assert!(v6.allows(&to(false, "0:0:0:0:0:0:0:1", 9000)));
        assert!(rule("http://*:8080").allows(&to(false, "anything", 8080)));
    }

    #[test]
    fn bad_entries_say_how_to_write_one() {
        for (text, why) in [
            ("api.example.com", "has no scheme"),
            ("ftp://x.example", "scheme \"ftp\""),
            ("https://x.example/path", "no path"),
            ("https://user@x.example", "no path, query or user"),
            ("https://x.example:0", "port \"0\""),
            ("https://x.example:http", "port \"http\""),
            ("https://ex ample", "not a host name"),
            ("https://*.", "is not a host name"),
        ] {
            let e = OutboundRule::parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
            assert!(e.contains("SCHEME://HOST[:PORT]"), "{e}");
        }
        let e = Outbound::parse(&["https://ok.example".into(), "nope".into()]).unwrap_err();
        assert!(e.to_string().contains("outbound[1]"), "{e}");
    }

    #[test]
    fn special_addresses() {
        let special = |s: &str| Outbound::special_address(s.parse().unwrap(), &[]);
        assert_eq!(special("127.0.0.1"), Some(SpecialAddress::Loopback));
        assert_eq!(special("127.3.2.1"), Some(SpecialAddress::Loopback));
        assert_eq!(special("::1"), Some(SpecialAddress::Loopback));
        assert_eq!(special("::ffff:127.0.0.1"), Some(SpecialAddress::Loopback));
        assert_eq!(special("169.254.169.254"), Some(SpecialAddress::LinkLocal));
        assert_eq!(special("fe80::1"), Some(SpecialAddress::LinkLocal));
        assert_eq!(special("fd00:ec2::254"), Some(SpecialAddress::LinkLocal));
        assert_eq!(special("0.0.0.0"), Some(SpecialAddress::Unspecified));
        assert_eq!(special("224.0.0.1"), Some(SpecialAddress::Multicast));
        assert_eq!(special("10.1.2.3"), None);
        assert_eq!(special("93.184.216.34"), None);
        let api: IpAddr = "10.96.0.1".parse().unwrap();
        assert_eq!(
            Outbound::special_address(api, &[api]),
            Some(SpecialAddress::ApiServer)
        );
    }

    #[test]
    fn the_description_names_the_list() {
        assert!(Outbound::default().describe().contains("is empty"));
        let o = Outbound::parse(&["https://a.example".into(), "http://*.b:1".into()]).unwrap();
        assert!(
            o.describe().contains("[https://a.example, http://*.b:1]"),
            "{}",
            o.describe()
        );
    }
}
