//! IPv4 networks in CIDR notation (`authorized_cidrs`, `trusted_proxies`), parsed once.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// An IPv4 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    network: u32,
    prefix: u8,
}

/// A string that is not `a.b.c.d/n` with n in 0..=32 (a bare address means /32).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IPv4 CIDR (a.b.c.d/n, n in 0..=32)")]
pub struct InvalidCidr(pub String);

impl FromStr for Ipv4Cidr {
    type Err = InvalidCidr;
    fn from_str(raw: &str) -> Result<Self, InvalidCidr> {
        let invalid = || InvalidCidr(raw.chars().take(64).collect());
        let (address, prefix) = match raw.trim().split_once('/') {
            Some((address, prefix)) => (address, prefix.parse::<u8>().map_err(|_| invalid())?),
            None => (raw.trim(), 32),
        };
        if prefix > 32 {
            return Err(invalid());
        }
        let address: Ipv4Addr = address.parse().map_err(|_| invalid())?;
        Ok(Self {
            network: u32::from(address) & mask(prefix),
            prefix,
        })
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

impl Ipv4Cidr {
    /// Whether `ip` is in the network (an IPv6 address is in no IPv4 network, except the
    /// IPv4-mapped form `::ffff:a.b.c.d`).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let v4 = match ip {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4,
                None => return false,
            },
        };
        u32::from(v4) & mask(self.prefix) == self.network
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

/// Parses a list, naming the first bad entry.
pub fn parse_all(raw: &[String]) -> Result<Vec<Ipv4Cidr>, InvalidCidr> {
    raw.iter().map(|r| r.parse()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_contain_their_addresses_only() {
        let net: Ipv4Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.255.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")));
        assert!(!net.contains(ip("::1")));
        let any: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains(ip("203.0.113.7")));
        let host: Ipv4Cidr = "127.0.0.1".parse().unwrap();
        assert_eq!(host.to_string(), "127.0.0.1/32");
        assert!(!host.contains(ip("127.0.0.2")));
    }

    #[test]
    fn malformed_cidrs_are_refused() {
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0/8",
            "abc",
            "10.0.0.0/x",
            "::1/128",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
    }
}
