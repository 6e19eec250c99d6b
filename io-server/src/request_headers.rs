//! Reading the request headers that decide who a caller is: credentials, idempotency keys and
//! the client address a trusted proxy forwards. A header may arrive on several lines; each
//! reader here says what several lines mean instead of silently taking the first one (which
//! let a client's own `X-Forwarded-For` line be believed ahead of the proxy's).

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName, header};
use io_core::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::problem::Problem;

/// The value of a header that must appear at most once: `None` when absent, 400 when it is
/// repeated or is not visible ASCII (RFC 9110 field values; a credential never needs more).
pub fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, Problem> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Problem::bad_request(format!(
            "{name}: the header is given more than once"
        )));
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| Problem::bad_request(format!("{name}: expected visible ASCII characters")))
}

/// The token of `Authorization: Bearer <token>`: the scheme matched case-insensitively
/// (RFC 9110 §11.1), the token trimmed. `Ok(None)` when there is no bearer token; 400 when the
/// header is repeated or unreadable.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, Problem> {
    let Some(value) = single(headers, header::AUTHORIZATION.as_str())? else {
        return Ok(None);
    };
    let Some((scheme, token)) = value.trim_start().split_once(' ') else {
        return Ok(None);
    };
    let token = token.trim();
    Ok((scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token))
}

/// Which header the trusted proxies write the client's address into. Only that header is read:
/// a client can send either, and only the one the proxy appends to can be trusted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyHeader {
    /// `X-Forwarded-For: client, proxy1, …` (HAProxy, nginx, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for=proxy1`.
    Forwarded,
}

/// The address a request comes from: the TCP peer, or, when the peer is a trusted proxy, the
/// right-most address of the forwarding chain that is not itself a trusted proxy (the left-most
/// when every hop is trusted). Every line of the header counts, in order, as RFC 9110 §5.3
/// joins them. `None` when the chain cannot be read (an unparsable or obfuscated hop at the
/// place the address would be taken from): a caller restricted by address is then refused
/// rather than mistaken for the proxy.
pub fn client_address(
    trusted: &[IpNetwork],
    proxy_header: ProxyHeader,
    peer: IpAddr,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let name = match proxy_header {
        ProxyHeader::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
        ProxyHeader::Forwarded => header::FORWARDED,
    };
    let mut hops = Vec::new();
    for line in headers.get_all(&name) {
        let line = line.to_str().ok()?;
        for hop in line.split(',') {
            hops.push(match proxy_header {
                ProxyHeader::XForwardedFor => parse_address(hop.trim()),
                ProxyHeader::Forwarded => forwarded_for(hop),
            });
        }
    }
    let mut leftmost = None;
    for hop in hops.into_iter().rev() {
        let ip = hop?;
        if !is_trusted(ip) {
            return Some(ip);
        }
        leftmost = Some(ip);
    }
    Some(leftmost.unwrap_or(peer))
}

/// The `for=` node of one `Forwarded` element (`for=192.0.2.60;proto=http`,
/// `for="[2001:db8::1]:4711"`); `None` when absent or not an address (`unknown`, `_hidden`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        parse_address(value)
    })
}

/// An address as proxies write it: bare, `a.b.c.d:port`, `[v6]` or `[v6]:port`.
fn parse_address(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return if port_ok { inside.parse().ok() } else { None };
    }
    let (host, port) = text.rsplit_once(':')?;
    let ip: std::net::Ipv4Addr = host.parse().ok()?;
    is_port(port).then_some(IpAddr::V4(ip))
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(lines: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in lines {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn trusted() -> Vec<IpNetwork> {
        vec!["127.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()]
    }

    fn xff(lines: &[&str]) -> Option<IpAddr> {
        let lines: Vec<_> = lines.iter().map(|l| ("x-forwarded-for", *l)).collect();
        client_address(
            &trusted(),
            ProxyHeader::XForwardedFor,
            ip("127.0.0.1"),
            &headers(&lines),
        )
    }

    #[test]
    fn every_forwarded_for_line_counts_and_the_proxys_own_line_wins() {
        // HAProxy appends its own line after the client's: the last line is the proxy's word.
        assert_eq!(xff(&["10.9.9.5", "203.0.113.9"]), Some(ip("203.0.113.9")));
        assert_eq!(xff(&["10.9.9.5, 203.0.113.9"]), Some(ip("203.0.113.9")));
        assert_eq!(
            xff(&["10.9.9.5", "203.0.113.9, 127.0.0.2"]),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(xff(&["127.0.0.3, 127.0.0.2"]), Some(ip("127.0.0.3")));
        assert_eq!(xff(&[]), Some(ip("127.0.0.1")));
        assert_eq!(xff(&["[2001:db8::7]:443"]), Some(ip("2001:db8::7")));
        assert_eq!(xff(&["198.51.100.4:8080"]), Some(ip("198.51.100.4")));
    }

    #[test]
    fn an_unreadable_hop_where_the_address_is_taken_gives_no_address() {
        assert_eq!(xff(&["10.9.9.5, garbage"]), None);
        assert_eq!(xff(&["unknown"]), None);
        assert_eq!(xff(&[""]), None);
        // Left of the first untrusted address, nothing is read.
        assert_eq!(xff(&["garbage, 203.0.113.9"]), Some(ip("203.0.113.9")));
    }

    #[test]
    fn an_untrusted_peer_is_the_source_whatever_it_claims() {
        let found = client_address(
            &trusted(),
            ProxyHeader::XForwardedFor,
            ip("198.51.100.1"),
            &headers(&[("x-forwarded-for", "10.9.9.5")]),
        );
        assert_eq!(found, Some(ip("198.51.100.1")));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let both = headers(&[
            ("x-forwarded-for", "10.9.9.5"),
            ("forwarded", "for=203.0.113.9;proto=https"),
        ]);
        let peer = ip("127.0.0.1");
        let read = |which| client_address(&trusted(), which, peer, &both);
        assert_eq!(read(ProxyHeader::XForwardedFor), Some(ip("10.9.9.5")));
        assert_eq!(read(ProxyHeader::Forwarded), Some(ip("203.0.113.9")));
    }

    #[test]
    fn forwarded_elements_parse_as_rfc_7239_writes_them() {
        let read = |lines: &[&str]| {
            let lines: Vec<_> = lines.iter().map(|l| ("forwarded", *l)).collect();
            client_address(
                &trusted(),
                ProxyHeader::Forwarded,
                ip("127.0.0.1"),
                &headers(&lines),
            )
        };
        assert_eq!(
            read(&[r#"for="[2001:db8:cafe::17]:4711""#]),
            Some(ip("2001:db8:cafe::17"))
        );
        assert_eq!(
            read(&["for=10.9.9.5", "For=192.0.2.43;proto=https, for=127.0.0.9"]),
            Some(ip("192.0.2.43"))
        );
        assert_eq!(read(&["for=_hidden"]), None);
        assert_eq!(read(&["proto=https"]), None);
    }

    #[test]
    fn credentials_are_single_and_the_scheme_is_case_insensitive() {
        let token = |lines: &[&str]| {
            let lines: Vec<_> = lines.iter().map(|l| ("authorization", *l)).collect();
            bearer_token(&headers(&lines)).map(|t| t.map(str::to_string))
        };
        assert_eq!(token(&["Bearer abc"]).unwrap().as_deref(), Some("abc"));
        assert_eq!(token(&["bearer abc"]).unwrap().as_deref(), Some("abc"));
        assert_eq!(token(&["BEARER   abc "]).unwrap().as_deref(), Some("abc"));
        assert_eq!(token(&["Basic abc"]).unwrap(), None);
        assert_eq!(token(&["Bearer "]).unwrap(), None);
        assert_eq!(token(&[]).unwrap(), None);
        assert_eq!(token(&["Bearer a", "Bearer b"]).unwrap_err().status, 400);
        let key = headers(&[
            ("ocp-apim-subscription-key", "k1"),
            ("ocp-apim-subscription-key", "k2"),
        ]);
        assert_eq!(
            single(&key, "ocp-apim-subscription-key")
                .unwrap_err()
                .status,
            400
        );
    }

    proptest! {
        #[test]
        fn any_header_text_reads_without_panic_and_never_yields_a_trusted_hop_behind_an_untrusted_one(
            lines in proptest::collection::vec("[ -~]{0,60}", 0..4),
            forwarded in any::<bool>(),
        ) {
            let which = if forwarded { ProxyHeader::Forwarded } else { ProxyHeader::XForwardedFor };
            let name = if forwarded { "forwarded" } else { "x-forwarded-for" };
            let mut map = HeaderMap::new();
            for line in &lines {
                if let Ok(value) = HeaderValue::from_str(line) {
                    map.append(HeaderName::from_static(name), value);
                }
            }
            let _ = bearer_token(&map);
            if let Some(found) = client_address(&trusted(), which, ip("127.0.0.1"), &map) {
                // The answer is the peer or an address written somewhere in the header.
                let written: Vec<IpAddr> = lines
                    .iter()
                    .flat_map(|line| line.split([',', ';', '=']))
                    .filter_map(|piece| parse_address(piece.trim().trim_matches('"')))
                    .collect();
                prop_assert!(found == ip("127.0.0.1") || written.contains(&found));
            }
        }

        #[test]
        fn an_appended_untrusted_address_is_always_the_answer(
            client in any::<[u8; 4]>(),
            real in any::<[u8; 4]>(),
        ) {
            let real = IpAddr::from(real);
            prop_assume!(!trusted().iter().any(|n| n.contains(real)));
            let client = IpAddr::from(client).to_string();
            let real_text = real.to_string();
            prop_assert_eq!(xff(&[client.as_str(), real_text.as_str()]), Some(real));
        }
    }
}
