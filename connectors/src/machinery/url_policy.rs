//! Which URLs from outside the connector fetches (pure).
//!
//! Guests' files arrive as URLs the platform names: a Teams `contentUrl`, a
//! Slack `url_private`, a Viber media URL; agents' attachments as Genesys
//! download URLs. Fetched as they are, such a URL can point the connector
//! at the cluster itself (a sidecar on 127.0.0.1, the cloud metadata
//! service on 169.254.169.254, a Service on 10.x), with the platform's
//! credential attached. So a URL from outside is judged before it is
//! fetched ([`judge`]):
//!
//! - only `http` and `https`;
//! - where a platform documents its file hosts ([`FetchRules::file_hosts`],
//!   e.g. `https://files.slack.com`), nowhere else, so its token is sent
//!   to its own hosts only;
//! - never to a loopback, link-local, private, shared (CGNAT), unspecified,
//!   multicast or reserved address, nor their IPv4-mapped, IPv4-compatible,
//!   NAT64 and 6to4 IPv6 forms ([`refused_kind`]), unless [`FetchAllow`]
//!   (`UM_FETCH_ALLOW`) lists it. A literal address is judged here; a name
//!   is judged by the address it resolves to, when the HTTP client
//!   connects ([`crate::machinery::http_client`]), so a name pointing at
//!   127.0.0.1 is refused too;
//! - a redirect is judged like the URL ([`judge_redirect`]), and never
//!   leads from https to http: a redirect to a refused address is not
//!   followed.
//!
//! The origin of a tenant's configured platform API base URL (an operator
//! setting, e.g. a simulator or a gateway) is trusted as configured
//! ([`FetchRules::configured_base`]): the connector already sends that
//! platform's credentials there.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use url::{Host, Url};

/// Why an address is not fetched from unless allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Loopback,
    LinkLocal,
    Private,
    /// 100.64.0.0/10, carrier-grade NAT (RFC 6598).
    Shared,
    Unspecified,
    Multicast,
    /// 240.0.0.0/4 and the broadcast address.
    Reserved,
}

impl AddressKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressKind::Loopback => "loopback",
            AddressKind::LinkLocal => "link-local",
            AddressKind::Private => "private",
            AddressKind::Shared => "shared (CGNAT)",
            AddressKind::Unspecified => "unspecified",
            AddressKind::Multicast => "multicast",
            AddressKind::Reserved => "reserved",
        }
    }
}

impl fmt::Display for AddressKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A URL that is not fetched. Names the host, never the whole URL (file
/// URLs carry pre-authentication).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchRefused {
    #[error("not a URL: {0}")]
    NotAUrl(String),
    #[error("only http and https URLs are fetched, not {0}:")]
    Scheme(String),
    #[error("the URL names no host")]
    NoHost,
    #[error(
        "{host} is a {kind} address ({address}): not fetched (UM_FETCH_ALLOW lists the addresses that may be)"
    )]
    Address {
        host: String,
        address: IpAddr,
        kind: AddressKind,
    },
    #[error("{host} is not a host the platform keeps files on ({allowed}): not fetched")]
    NotAFileHost { host: String, allowed: String },
    #[error("redirect from https to http ({host}): not followed")]
    Downgrade { host: String },
    #[error("more than {MAX_REDIRECTS} redirects: not followed")]
    TooManyRedirects,
}

/// Redirects followed from a URL from outside, each judged like the URL.
pub const MAX_REDIRECTS: usize = 5;

fn v4(octets: [u8; 4], prefix: u8) -> Ipv4Net {
    // The prefixes below are all at most 32.
    Ipv4Net::new(Ipv4Addr::from(octets), prefix).unwrap_or_default()
}

fn v6(address: u128, prefix: u8) -> Ipv6Net {
    // The prefixes below are all at most 128.
    Ipv6Net::new(Ipv6Addr::from(address), prefix).unwrap_or_default()
}

fn refused_v4(ip: Ipv4Addr) -> Option<AddressKind> {
    let ranges = [
        (v4([0, 0, 0, 0], 8), AddressKind::Unspecified),
        (v4([127, 0, 0, 0], 8), AddressKind::Loopback),
        (v4([10, 0, 0, 0], 8), AddressKind::Private),
        (v4([172, 16, 0, 0], 12), AddressKind::Private),
        (v4([192, 168, 0, 0], 16), AddressKind::Private),
        (v4([100, 64, 0, 0], 10), AddressKind::Shared),
        (v4([169, 254, 0, 0], 16), AddressKind::LinkLocal),
        (v4([224, 0, 0, 0], 4), AddressKind::Multicast),
        (v4([240, 0, 0, 0], 4), AddressKind::Reserved),
    ];
    ranges
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, kind)| *kind)
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return Some(mapped);
    }
    if v6(0, 96).contains(&ip) || v6(0x0064_ff9b_u128 << 96, 96).contains(&ip) {
        return Some(low32);
    }
    if v6(0x2002_u128 << 112, 16).contains(&ip) {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

/// Why `ip` is refused unless allowed, or `None` for a public address.
pub fn refused_kind(ip: IpAddr) -> Option<AddressKind> {
    match ip {
        IpAddr::V4(ip) => refused_v4(ip),
        IpAddr::V6(ip) => {
            if ip.is_unspecified() {
                return Some(AddressKind::Unspecified);
            }
            if ip.is_loopback() {
                return Some(AddressKind::Loopback);
            }
            if let Some(embedded) = embedded_v4(ip) {
                return refused_v4(embedded);
            }
            let ranges = [
                (v6(0xfe80_u128 << 112, 10), AddressKind::LinkLocal),
                (v6(0xfc00_u128 << 112, 7), AddressKind::Private),
                // Site-local, deprecated but still routed by some stacks.
                (v6(0xfec0_u128 << 112, 10), AddressKind::Private),
                (v6(0xff00_u128 << 112, 8), AddressKind::Multicast),
            ];
            ranges
                .iter()
                .find(|(net, _)| net.contains(&ip))
                .map(|(_, kind)| *kind)
        }
    }
}

/// Addresses and host names fetched from although [`refused_kind`] says
/// otherwise (`UM_FETCH_ALLOW`): CIDRs (`10.20.0.0/16`), addresses
/// (`127.0.0.1`, `::1`) and host names (`files.internal.example`, every
/// address it resolves to), separated by commas or spaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchAllow {
    nets: Vec<IpNet>,
    hosts: Vec<String>,
}

impl FromStr for FetchAllow {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let mut allow = FetchAllow::default();
        for entry in value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
        {
            let bare = entry.trim_start_matches('[').trim_end_matches(']');
            if let Ok(net) = bare.parse::<IpNet>() {
                allow.nets.push(net.trunc());
            } else if let Ok(ip) = bare.parse::<IpAddr>() {
                allow.nets.push(IpNet::from(ip));
            } else if let Some(host) = host_name(entry) {
                allow.hosts.push(host);
            } else {
                return Err(format!(
                    "{entry:?} is neither a CIDR, an address nor a host name"
                ));
            }
        }
        Ok(allow)
    }
}

/// A DNS name, lower-cased and without its final dot.
fn host_name(value: &str) -> Option<String> {
    let name = value.trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    valid.then_some(name)
}

impl FetchAllow {
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && self.hosts.is_empty()
    }

    /// The same list with `host` added (e.g. the outbound proxy's name).
    pub fn with_host(mut self, host: &str) -> Self {
        if let Some(host) = host_name(host) {
            self.hosts.push(host);
        }
        self
    }

    pub fn allows_address(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.nets
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
    }

    /// A listed name: every address it resolves to is fetched from.
    pub fn allows_host(&self, host: &str) -> bool {
        host_name(host).is_some_and(|host| self.hosts.contains(&host))
    }

    /// `Ok` for a public or allowed address, else why not.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), AddressKind> {
        match refused_kind(ip) {
            Some(kind) if !self.allows_address(ip) => Err(kind),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for FetchAllow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self
            .nets
            .iter()
            .map(ToString::to_string)
            .chain(self.hosts.iter().cloned())
            .collect();
        f.write_str(&entries.join(","))
    }
}

/// What a platform adds to the address policy for one fetch.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchRules<'a> {
    /// The tenant's configured platform API base URL, if one is set: its
    /// origin is fetched from as configured.
    pub configured_base: Option<&'a str>,
    /// Origins (`https://files.slack.com`) the platform documents for its
    /// files; when not empty, no other origin is fetched from (but the
    /// configured base).
    pub file_hosts: &'a [&'a str],
}

/// How a URL that passed [`judge`] is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// On the configured base's origin: as configured.
    Configured,
    /// Through the address policy: a name's addresses are checked when
    /// the client connects.
    Checked,
}

fn same_origin(url: &Url, other: &str) -> bool {
    Url::parse(other).is_ok_and(|other| other.origin() == url.origin())
}

/// Judges a URL from outside before anything is sent to it.
pub fn judge(url: &Url, rules: FetchRules<'_>, allow: &FetchAllow) -> Result<Route, FetchRefused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchRefused::Scheme(url.scheme().to_owned()));
    }
    let host = url.host().ok_or(FetchRefused::NoHost)?;
    if rules
        .configured_base
        .is_some_and(|base| same_origin(url, base))
    {
        return Ok(Route::Configured);
    }
    if !rules.file_hosts.is_empty() && !rules.file_hosts.iter().any(|h| same_origin(url, h)) {
        return Err(FetchRefused::NotAFileHost {
            host: host.to_string(),
            allowed: rules.file_hosts.join(", "),
        });
    }
    let address = match host {
        Host::Ipv4(ip) => IpAddr::V4(ip),
        Host::Ipv6(ip) => IpAddr::V6(ip),
        Host::Domain(_) => return Ok(Route::Checked),
    };
    allow
        .check_address(address)
        .map_err(|kind| FetchRefused::Address {
            host: host.to_string(),
            address,
            kind,
        })?;
    Ok(Route::Checked)
}

/// Judges where a redirect leads, `previous` being the URLs before it
/// (the first one judged by [`judge`]): like a URL from outside, never
/// from https to http, at most [`MAX_REDIRECTS`]. A name is judged by its
/// addresses when connecting, as the first URL's.
pub fn judge_redirect(
    next: &Url,
    previous: &[Url],
    allow: &FetchAllow,
) -> Result<(), FetchRefused> {
    if previous.len() > MAX_REDIRECTS {
        return Err(FetchRefused::TooManyRedirects);
    }
    if previous.last().is_some_and(|p| p.scheme() == "https") && next.scheme() != "https" {
        return Err(FetchRefused::Downgrade {
            host: next.host_str().unwrap_or_default().to_owned(),
        });
    }
    judge(next, FetchRules::default(), allow).map(|_| ())
}

/// [`judge`] of a URL given as text.
pub fn judge_str(
    url: &str,
    rules: FetchRules<'_>,
    allow: &FetchAllow,
) -> Result<(Url, Route), FetchRefused> {
    let parsed = Url::parse(url).map_err(|e| FetchRefused::NotAUrl(e.to_string()))?;
    let route = judge(&parsed, rules, allow)?;
    Ok((parsed, route))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn kind(text: &str) -> Option<AddressKind> {
        refused_kind(ip(text))
    }

    #[test]
    fn refuses_the_special_ipv4_ranges() {
        use AddressKind::*;
        for (address, expected) in [
            ("127.0.0.1", Loopback),
            ("127.255.1.2", Loopback),
            ("169.254.169.254", LinkLocal),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", Shared),
            ("100.127.255.255", Shared),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("224.0.0.251", Multicast),
            ("239.255.255.250", Multicast),
            ("255.255.255.255", Reserved),
            ("240.0.0.1", Reserved),
        ] {
            assert_eq!(kind(address), Some(expected), "{address}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for address in [
            "8.8.8.8",
            "52.112.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
        ] {
            assert_eq!(kind(address), None, "{address}");
        }
    }

    #[test]
    fn refuses_the_special_ipv6_ranges_and_ipv4_in_ipv6() {
        use AddressKind::*;
        for (address, expected) in [
            ("::1", Loopback),
            ("::", Unspecified),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("ff02::1", Multicast),
            // IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms.
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:10.1.2.3", Private),
            ("::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("2002:7f00:0001::", Loopback),
            ("2002:c0a8:0101::1", Private),
        ] {
            assert_eq!(kind(address), Some(expected), "{address}");
        }
        assert_eq!(kind("::ffff:8.8.8.8"), None);
        assert_eq!(kind("64:ff9b::808:808"), None);
    }

    #[test]
    fn the_allowlist_takes_cidrs_addresses_and_names() {
        let allow: FetchAllow = "127.0.0.1, 10.20.0.0/16 [::1]\nfiles.internal.example."
            .parse()
            .unwrap();
        assert!(allow.allows_address(ip("127.0.0.1")));
        assert!(allow.allows_address(ip("::ffff:127.0.0.1")));
        assert!(!allow.allows_address(ip("127.0.0.2")));
        assert!(allow.allows_address(ip("10.20.3.4")));
        assert!(!allow.allows_address(ip("10.21.0.1")));
        assert!(allow.allows_address(ip("::1")));
        assert!(allow.allows_host("FILES.internal.example"));
        assert!(!allow.allows_host("internal.example"));
        assert_eq!(
            allow.to_string(),
            "127.0.0.1/32,10.20.0.0/16,::1/128,files.internal.example"
        );
        assert!("".parse::<FetchAllow>().unwrap().is_empty());
        let err = "10.0.0.0/33".parse::<FetchAllow>().unwrap_err();
        assert!(err.contains("10.0.0.0/33"), "{err}");
        assert!("http://x".parse::<FetchAllow>().is_err());
        assert!("-bad-.example".parse::<FetchAllow>().is_err());
    }

    #[test]
    fn an_allowed_address_passes_and_others_of_its_kind_do_not() {
        let allow: FetchAllow = "127.0.0.1".parse().unwrap();
        assert_eq!(allow.check_address(ip("127.0.0.1")), Ok(()));
        assert_eq!(
            allow.check_address(ip("127.0.0.2")),
            Err(AddressKind::Loopback)
        );
        assert_eq!(
            FetchAllow::default().check_address(ip("127.0.0.1")),
            Err(AddressKind::Loopback)
        );
        assert_eq!(FetchAllow::default().check_address(ip("8.8.8.8")), Ok(()));
    }

    fn judged(url: &str, rules: FetchRules<'_>, allow: &str) -> Result<Route, FetchRefused> {
        judge_str(url, rules, &allow.parse().unwrap()).map(|(_, route)| route)
    }

    #[test]
    fn literal_addresses_are_judged_before_anything_is_sent() {
        let none = FetchRules::default();
        assert!(matches!(
            judged("http://127.0.0.1:8080/x", none, ""),
            Err(FetchRefused::Address {
                kind: AddressKind::Loopback,
                ..
            })
        ));
        assert!(matches!(
            judged("http://[::ffff:169.254.169.254]/latest/meta-data", none, ""),
            Err(FetchRefused::Address {
                kind: AddressKind::LinkLocal,
                ..
            })
        ));
        // Other spellings of 127.0.0.1 are addresses too.
        for spelled in ["http://2130706433/", "http://0x7f.1/", "http://127.1/"] {
            assert!(
                matches!(judged(spelled, none, ""), Err(FetchRefused::Address { .. })),
                "{spelled}"
            );
        }
        assert_eq!(
            judged("http://127.0.0.1:8080/x", none, "127.0.0.1"),
            Ok(Route::Checked)
        );
        assert_eq!(judged("https://8.8.8.8/x", none, ""), Ok(Route::Checked));
        // A name is judged by its addresses when connecting.
        assert_eq!(judged("http://localhost/x", none, ""), Ok(Route::Checked));
        assert!(matches!(
            judged("file:///etc/passwd", none, ""),
            Err(FetchRefused::Scheme(_))
        ));
        assert!(matches!(
            judged("not a url", none, ""),
            Err(FetchRefused::NotAUrl(_))
        ));
    }

    #[test]
    fn the_configured_base_origin_is_fetched_as_configured() {
        let rules = FetchRules {
            configured_base: Some("http://127.0.0.1:4001"),
            file_hosts: &["https://files.slack.com"],
        };
        assert_eq!(
            judged("http://127.0.0.1:4001/files-pri/T1-F1/a.png", rules, ""),
            Ok(Route::Configured)
        );
        // Another port of the same address is another origin.
        assert!(judged("http://127.0.0.1:4002/files-pri/T1-F1/a.png", rules, "").is_err());
    }

    #[test]
    fn only_the_documented_file_hosts() {
        let rules = FetchRules {
            configured_base: None,
            file_hosts: &["https://files.slack.com"],
        };
        assert_eq!(
            judged("https://files.slack.com/files-pri/T1-F1/a.png", rules, ""),
            Ok(Route::Checked)
        );
        for elsewhere in [
            "https://files.slack.com.attacker.example/files-pri/T1-F1/a.png",
            "http://files.slack.com/files-pri/T1-F1/a.png",
            "https://slack.com/files-pri/T1-F1/a.png",
            "https://attacker.example/files.slack.com/a.png",
        ] {
            let refused = judged(elsewhere, rules, "").unwrap_err();
            assert!(
                matches!(refused, FetchRefused::NotAFileHost { .. }),
                "{elsewhere}: {refused}"
            );
        }
        // Even an allowed address is not a file host.
        assert!(judged("http://127.0.0.1:9/a.png", rules, "127.0.0.1").is_err());
    }

    #[test]
    fn redirects_are_judged_like_the_url() {
        let allow: FetchAllow = "127.0.0.2".parse().unwrap();
        let url = |u: &str| Url::parse(u).unwrap();
        let from = [url("http://127.0.0.2:8080/file")];
        assert_eq!(
            judge_redirect(&url("http://127.0.0.2:8080/elsewhere"), &from, &allow),
            Ok(())
        );
        assert!(matches!(
            judge_redirect(&url("http://127.0.0.1:9/x"), &from, &allow),
            Err(FetchRefused::Address {
                kind: AddressKind::Loopback,
                ..
            })
        ));
        assert!(matches!(
            judge_redirect(&url("http://169.254.169.254/latest"), &from, &allow),
            Err(FetchRefused::Address { .. })
        ));
        assert!(matches!(
            judge_redirect(&url("gopher://example.com/"), &from, &allow),
            Err(FetchRefused::Scheme(_))
        ));
        let secure = [url("https://files.example/a")];
        assert!(matches!(
            judge_redirect(&url("http://files.example/a"), &secure, &allow),
            Err(FetchRefused::Downgrade { .. })
        ));
        assert_eq!(
            judge_redirect(&url("https://cdn.example/a"), &secure, &allow),
            Ok(())
        );
        let many: Vec<Url> = (0..=MAX_REDIRECTS)
            .map(|i| url(&format!("https://cdn.example/{i}")))
            .collect();
        assert_eq!(
            judge_redirect(&url("https://cdn.example/last"), &many, &allow),
            Err(FetchRefused::TooManyRedirects)
        );
    }

    #[test]
    fn refusals_name_the_host_not_the_url() {
        let refused = judged(
            "http://127.0.0.1:9/file?tempauth=secret",
            FetchRules::default(),
            "",
        )
        .unwrap_err();
        let text = refused.to_string();
        assert!(
            text.contains("127.0.0.1") && text.contains("loopback"),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
    }
}
