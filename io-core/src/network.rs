//! IP networks in CIDR notation (a service's `authorized_cidrs`, the server's trusted proxies),
//! IPv4 and IPv6, validated once when a service or a configuration is read.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IPv4 or IPv6 network, its host bits cleared (`10.1.2.3/16` is kept as `10.1.0.0/16`).
/// A bare address means that one host (`/32` or `/128`). Serialized as its text form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpNetwork(IpNet);

/// Text that is not an address or `address/prefix` (prefix at most 32 for IPv4, 128 for IPv6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a CIDR network (a.b.c.d/n with n ≤ 32, or an IPv6 address/n with n ≤ 128)")]
pub struct InvalidNetwork(pub String);

impl FromStr for IpNetwork {
    type Err = InvalidNetwork;

    fn from_str(raw: &str) -> Result<Self, InvalidNetwork> {
        let text = raw.trim();
        let invalid = || InvalidNetwork(raw.chars().take(64).collect());
        // ipnet accepts a prefix with a sign or leading zeros ("+8", "008"); CIDR text does not.
        if let Some((_, prefix)) = text.split_once('/') {
            let digits = prefix.bytes().all(|b| b.is_ascii_digit());
            if prefix.is_empty() || prefix.len() > 3 || !digits {
                return Err(invalid());
            }
        }
        let net = match text.parse::<IpNet>() {
            Ok(net) => net,
            Err(_) => IpNet::from(text.parse::<IpAddr>().map_err(|_| invalid())?),
        };
        Ok(Self(net.trunc()))
    }
}

impl IpNetwork {
    /// Whether `ip` is in the network. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, how a
    /// dual-stack listener reports IPv4 peers) is compared as the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.contains(&ip)
    }

    /// The `ipnet` value, for callers that need its set operations.
    pub fn as_ipnet(&self) -> IpNet {
        self.0
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for IpNetwork {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNetwork {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let v4 = net("10.1.7.9/16");
        assert_eq!(v4.to_string(), "10.1.0.0/16");
        assert!(v4.contains(ip("10.1.255.3")));
        assert!(!v4.contains(ip("10.2.0.1")));
        assert!(v4.contains(ip("::ffff:10.1.0.9")));
        assert!(!v4.contains(ip("::1")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.7")));
        let host = net("127.0.0.1");
        assert_eq!(host.to_string(), "127.0.0.1/32");
        assert!(!host.contains(ip("127.0.0.2")));
        let v6 = net("2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.1.0.1")));
        assert_eq!(net("::1").to_string(), "::1/128");
    }

    #[test]
    fn malformed_networks_are_refused() {
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0/8",
            "abc",
            "10.0.0.0/x",
            "10.0.0.0/+8",
            "10.0.0.0/008",
            "10.0.0.0/",
            "::1/129",
            "010.0.0.1",
        ] {
            assert!(bad.parse::<IpNetwork>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_text_form_round_trips_through_serde() {
        let nets: Vec<IpNetwork> = serde_json::from_str(r#"["10.9.9.0/24","::1"]"#).unwrap();
        assert_eq!(
            serde_json::to_string(&nets).unwrap(),
            r#"["10.9.9.0/24","::1/128"]"#
        );
        assert!(serde_json::from_str::<IpNetwork>(r#""10.9.9.0/40""#).is_err());
    }
}
