//! Transport URLs, with oslo.messaging's grammar (`TransportURL.parse` and `__str__`):
//!
//! ```text
//! driver[+extra]://[user[:pass]@]host[:port][,[user[:pass]@]host[:port]]*[/virtual_host][?query]
//! ```
//!
//! The splitting follows CPython's `urllib.parse.urlparse` and the host rules follow
//! `oslo_utils.netutils.parse_host_port`, except that input Python would accept
//! silently but cannot mean anything (a port that is not a decimal number in
//! 0-65535, text after `]`, several `:` in a host that is not an IPv6 address,
//! `[` or `]` outside an IPv6 literal, bytes that are not UTF-8 after
//! percent-decoding) is refused with an error naming the bad part.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::Ipv6Addr;
use std::str::FromStr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

use crate::{Error, Result};

/// Python's `quote(x, safe='')`: everything but ASCII letters, digits and `_.-~`.
const QUOTE_ALL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');
/// Python's `quote(x)` (default `safe='/'`).
const QUOTE_PATH: &AsciiSet = &QUOTE_ALL.remove(b'/');
/// Python's `quote_plus(x, safe='')` before spaces become `+`.
const QUOTE_PLUS: &AsciiSet = &QUOTE_ALL.remove(b' ');

/// What replaces a password in [`TransportUrl::masked`], in `Debug` output and in errors.
const MASK: &str = "****";

/// Added to host errors when a credential may have been cut by an unencoded delimiter.
const ENCODING_HINT: &str = "a ',', '/', '?' or '#' inside a user name or password must be \
                             percent-encoded";

/// Schemes for which `urlparse` splits `;params` off the last path segment.
const USES_PARAMS: &[&str] = &[
    "ftp", "hdl", "prospero", "http", "imap", "https", "shttp", "rtsp", "rtsps", "rtspu", "sip",
    "sips", "mms", "sftp", "tel",
];

/// One `[user[:pass]@]host[:port]` element of a transport URL (oslo's `TransportHost`).
///
/// Equality and hashing cover all four fields. `Debug` shows the password as `****`.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TransportHost {
    /// The host name or IP address, without brackets and not percent-decoded.
    /// `None` when the element has no host (`u:p@`); `Some("")` for `:port`, as oslo.
    pub hostname: Option<String>,
    /// The port, when one is given.
    pub port: Option<u16>,
    /// The percent-decoded user name; `Some("")` for `@host` or `:pass@host`.
    pub username: Option<String>,
    /// The percent-decoded password, when the user info has a `:`.
    pub password: Option<String>,
}

impl fmt::Debug for TransportHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportHost")
            .field("hostname", &self.hostname)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| MASK))
            .finish()
    }
}

/// A parsed transport URL (oslo's `TransportURL`).
///
/// `Display` gives oslo's `__str__` (passwords included, since drivers need them
/// to connect); [`TransportUrl::masked`] and `Debug` hide passwords. Equality and
/// hashing cover `transport`, `virtual_host` and `hosts`, not `query`, as oslo.
///
/// ```
/// use messaging_core::TransportUrl;
///
/// let url: TransportUrl = "rabbit://me:p%40ss@[::1]:5672,h2/vh?a=1&a=2".parse().unwrap();
/// assert_eq!(url.driver(), "rabbit");
/// assert_eq!(url.hosts[0].hostname.as_deref(), Some("::1"));
/// assert_eq!(url.hosts[0].password.as_deref(), Some("p@ss"));
/// assert_eq!(url.hosts[1].username, None); // credentials are not inherited
/// assert_eq!(url.virtual_host.as_deref(), Some("vh"));
/// assert_eq!(url.query_value("a"), Some("1,2"));
/// assert_eq!(url.masked(), "rabbit://me:****@[::1]:5672,h2/vh?a=1%2C2");
/// assert_eq!(url.to_string(), "rabbit://me:p%40ss@[::1]:5672,h2/vh?a=1%2C2");
/// ```
#[derive(Clone)]
pub struct TransportUrl {
    /// The scheme, lower-cased, including any `+extra` part (e.g. `zmq+redis`).
    pub transport: String,
    /// The percent-decoded path without its leading `/`; `None` when there is no path.
    pub virtual_host: Option<String>,
    /// The hosts, in order; empty elements of the host list are skipped.
    pub hosts: Vec<TransportHost>,
    /// The query parameters, keys in first-seen order; the values of a repeated key
    /// are joined with `,`. Parameters without `=` or with an empty value are dropped.
    pub query: Vec<(String, String)>,
}

impl TransportUrl {
    /// Parses `url` with oslo.messaging's grammar.
    ///
    /// Errors are [`Error::InvalidUrl`] with the URL's passwords masked and a reason
    /// naming the bad part: `No scheme specified`, a bad host or port, or a user
    /// name, password, virtual host or query parameter that is not UTF-8 once
    /// percent-decoded. Logs a warning when only some hosts carry credentials.
    pub fn parse(url: &str) -> Result<TransportUrl> {
        let cleaned = clean_input(url);
        let split = Split::new(&cleaned);
        let fail = |reason: String| Error::InvalidUrl {
            url: split.masked_input(),
            reason,
        };

        let Some(scheme) = split.scheme else {
            return Err(fail("No scheme specified".to_string()));
        };
        let transport = scheme.to_ascii_lowercase();

        let mut path = split.path;
        if USES_PARAMS.contains(&transport.as_str()) {
            path = strip_params(path);
        }

        let query = parse_query(split.query).map_err(fail)?;

        let virtual_host = match path.strip_prefix('/') {
            Some(vhost) => Some(decode(vhost, "the virtual host").map_err(fail)?),
            None => None,
        };

        let mut hosts = Vec::new();
        let mut with_credentials = Vec::new();
        let mut without_credentials = Vec::new();
        let elements = split
            .netloc
            .unwrap_or("")
            .split(',')
            .filter(|e| !e.is_empty());
        for (index, element) in elements.enumerate() {
            let n = index + 1;
            let (userinfo, hostport) = match element.rsplit_once('@') {
                Some((userinfo, hostport)) => (Some(userinfo), hostport),
                None => (None, element),
            };
            let (mut username, mut password) = (None, None);
            if let Some(userinfo) = userinfo {
                let (user, pass) = match userinfo.split_once(':') {
                    Some((user, pass)) => (user, Some(pass)),
                    None => (userinfo, None),
                };
                username = Some(decode(user, &format!("the user name of host {n}")).map_err(fail)?);
                if let Some(pass) = pass {
                    password =
                        Some(decode(pass, &format!("the password of host {n}")).map_err(fail)?);
                }
            }
            let (hostname, port) = parse_host_port(hostport).map_err(|e| {
                fail(if split.suspicious() {
                    format!("host {n}: {} ({ENCODING_HINT})", e.problem)
                } else {
                    format!("host {n}: {}: {:?}", e.problem, e.text)
                })
            })?;
            if username.is_some() && password.is_some() {
                with_credentials.push(hostname.clone());
            } else {
                without_credentials.push(hostname.clone());
            }
            hosts.push(TransportHost {
                hostname,
                port,
                username,
                password,
            });
        }
        if !with_credentials.is_empty() && !without_credentials.is_empty() {
            tracing::warn!(
                hosts_with_credentials = ?with_credentials,
                hosts_without_credentials = ?without_credentials,
                "All hosts must be set with username/password or not at the same time; \
                 hosts without credentials get none (nothing is inherited)"
            );
        }

        Ok(TransportUrl {
            transport,
            virtual_host,
            hosts,
            query,
        })
    }

    /// The driver name: the part of `transport` before the first `+`.
    pub fn driver(&self) -> &str {
        self.transport.split('+').next().unwrap_or_default()
    }

    /// The value of query parameter `key` (repeated keys already joined with `,`).
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `Display` form with every password replaced by `****`, for logs.
    pub fn masked(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, true)
            .expect("writing to a String cannot fail");
        out
    }

    /// oslo's `__str__`, optionally masking passwords.
    fn write(&self, out: &mut impl fmt::Write, mask: bool) -> fmt::Result {
        write!(out, "{}://", self.transport)?;
        for (i, host) in self.hosts.iter().enumerate() {
            if i > 0 {
                out.write_char(',')?;
            }
            if host.username.is_some() || host.password.is_some() {
                if let Some(user) = &host.username {
                    write!(out, "{}", utf8_percent_encode(user, QUOTE_ALL))?;
                }
                if let Some(pass) = &host.password {
                    if mask {
                        write!(out, ":{MASK}")?;
                    } else {
                        write!(out, ":{}", utf8_percent_encode(pass, QUOTE_ALL))?;
                    }
                }
                out.write_char('@')?;
            }
            match host.hostname.as_deref() {
                // oslo brackets only zones of up to 15 characters (`is_valid_ipv6`),
                // which loses the port of a longer one: bracket every IPv6 address
                // `parse` accepts, so that the output parses back.
                Some(name) if is_ipv6_literal(name) => write!(out, "[{name}]")?,
                Some(name) => out.write_str(name)?,
                None => {}
            }
            if let Some(port) = host.port {
                write!(out, ":{port}")?;
            }
        }
        out.write_char('/')?;
        if let Some(vhost) = self.virtual_host.as_deref() {
            write!(out, "{}", utf8_percent_encode(vhost, QUOTE_PATH))?;
        }
        for (i, (key, value)) in self.query.iter().enumerate() {
            out.write_char(if i == 0 { '?' } else { '&' })?;
            write!(out, "{}={}", quote_plus(key), quote_plus(value))?;
        }
        Ok(())
    }
}

impl FromStr for TransportUrl {
    type Err = Error;

    /// Same as [`TransportUrl::parse`].
    fn from_str(s: &str) -> Result<Self> {
        TransportUrl::parse(s)
    }
}

impl fmt::Display for TransportUrl {
    /// oslo's `__str__`: `transport://netlocs/` then the quoted virtual host, then
    /// the urlencoded query. Passwords are included; use [`TransportUrl::masked`] for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

impl fmt::Debug for TransportUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransportUrl")
            .field("transport", &self.transport)
            .field("virtual_host", &self.virtual_host)
            .field("hosts", &self.hosts)
            .field("query", &self.query)
            .finish()
    }
}

impl PartialEq for TransportUrl {
    fn eq(&self, other: &Self) -> bool {
        self.transport == other.transport
            && self.virtual_host == other.virtual_host
            && self.hosts == other.hosts
    }
}

impl Eq for TransportUrl {}

impl Hash for TransportUrl {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.transport.hash(state);
        self.virtual_host.hash(state);
        self.hosts.hash(state);
    }
}

/// `urlsplit`'s clean-up: strip leading C0 controls and spaces, drop tabs and newlines.
fn clean_input(url: &str) -> String {
    url.trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect()
}

/// The pieces `urlsplit` cuts a URL into, as slices of the cleaned input.
struct Split<'a> {
    /// The whole cleaned input.
    whole: &'a str,
    /// The scheme as written, when there is one.
    scheme: Option<&'a str>,
    /// What precedes the netloc (`scheme:` and `//`).
    head: &'a str,
    /// The text between `//` and the first `/`, `?` or `#`, when there is a `//`.
    netloc: Option<&'a str>,
    /// Everything after the netloc (path, query and fragment).
    tail: &'a str,
    /// The path, without query and fragment.
    path: &'a str,
    /// The query, without `?` and fragment.
    query: &'a str,
}

impl<'a> Split<'a> {
    fn new(whole: &'a str) -> Self {
        let mut scheme = None;
        let mut rest = whole;
        if let Some(colon) = whole.find(':') {
            let candidate = &whole[..colon];
            let mut chars = candidate.chars();
            if chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            {
                scheme = Some(candidate);
                rest = &whole[colon + 1..];
            }
        }
        let mut netloc = None;
        if let Some(after) = rest.strip_prefix("//") {
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            netloc = Some(&after[..end]);
            rest = &after[end..];
        }
        let head = &whole[..whole.len() - rest.len() - netloc.map_or(0, str::len)];
        let tail = rest;
        let without_fragment = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (path, query) = without_fragment
            .split_once('?')
            .unwrap_or((without_fragment, ""));
        Split {
            whole,
            scheme,
            head,
            netloc,
            tail,
            path,
            query,
        }
    }

    /// Whether an unencoded `,`, `/`, `?` or `#` may have cut a credential, so that
    /// text outside the recognised user info may be part of a password.
    fn suspicious(&self) -> bool {
        if !self.whole.contains('@') {
            return false;
        }
        let Some(netloc) = self.netloc else {
            return true;
        };
        if self.tail.contains('@') {
            return true;
        }
        let mut seen_without_at = false;
        for element in netloc.split(',').filter(|e| !e.is_empty()) {
            if element.contains('@') {
                if seen_without_at {
                    return true;
                }
            } else {
                seen_without_at = true;
            }
        }
        false
    }

    /// The input with passwords masked, for error messages.
    fn masked_input(&self) -> String {
        if !self.whole.contains('@') {
            return self.whole.to_string();
        }
        if self.suspicious() {
            let at = self.whole.rfind('@').unwrap_or(0);
            return format!("{}{MASK}{}", self.head, &self.whole[at..]);
        }
        let netloc = self.netloc.unwrap_or("");
        let elements: Vec<String> = netloc
            .split(',')
            .map(|element| match element.rsplit_once('@') {
                Some((userinfo, hostport)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:{MASK}@{hostport}"),
                    None => element.to_string(),
                },
                None => element.to_string(),
            })
            .collect();
        format!("{}{}{}", self.head, elements.join(","), self.tail)
    }
}

/// `urlparse`'s `_splitparams`: drop `;params` from the last path segment.
fn strip_params(path: &str) -> &str {
    let start = path.rfind('/').unwrap_or(0);
    match path[start..].find(';') {
        Some(i) => &path[..start + i],
        None => path,
    }
}

/// Python's `unquote`, except that bytes that are not UTF-8 are an error naming `what`.
fn decode(text: &str, what: &str) -> std::result::Result<String, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| format!("{what} is not valid UTF-8 once percent-decoded"))
}

/// Python's `parse_qs` (blank values dropped), with repeated keys joined by `,`.
fn parse_query(query: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (index, pair) in query.split('&').enumerate() {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let what = format!("query parameter {}", index + 1);
        let key = decode(&key.replace('+', " "), &format!("the name of {what}"))?;
        let value = decode(&value.replace('+', " "), &format!("the value of {what}"))?;
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => out.push((key, value)),
        }
    }
    Ok(out)
}

/// Python's `quote_plus(x, safe='')`.
fn quote_plus(text: &str) -> String {
    utf8_percent_encode(text, QUOTE_PLUS)
        .to_string()
        .replace(' ', "+")
}

/// Why a `host[:port]` element was refused, and the offending text.
struct HostError {
    problem: &'static str,
    text: String,
}

impl HostError {
    fn new(problem: &'static str, text: &str) -> Self {
        HostError {
            problem,
            text: text.to_string(),
        }
    }
}

/// `oslo_utils.netutils.parse_host_port`, refusing what cannot be a host and port.
fn parse_host_port(address: &str) -> std::result::Result<(Option<String>, Option<u16>), HostError> {
    if address.is_empty() {
        return Ok((None, None));
    }
    if let Some(bracketed) = address.strip_prefix('[') {
        let Some(end) = bracketed.find(']') else {
            return Err(HostError::new("unclosed '[' (no matching ']')", address));
        };
        let host = &bracketed[..end];
        if !is_ipv6_literal(host) {
            return Err(HostError::new("not an IPv6 address inside '[...]'", host));
        }
        let after = &bracketed[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(port) => Some(parse_port(port)?),
            None if after.is_empty() => None,
            None => {
                return Err(HostError::new(
                    "unexpected text after ']', expected ':port'",
                    after,
                ));
            }
        };
        return Ok((Some(host.to_string()), port));
    }
    if address.contains(['[', ']']) {
        return Err(HostError::new(
            "'[' or ']' outside an IPv6 address (write [address]:port)",
            address,
        ));
    }
    match address.matches(':').count() {
        0 => Ok((Some(address.to_string()), None)),
        1 => {
            let (host, port) = address.split_once(':').unwrap_or((address, ""));
            Ok((Some(host.to_string()), Some(parse_port(port)?)))
        }
        _ if is_ipv6_literal(address) => Ok((Some(address.to_string()), None)),
        _ => Err(HostError::new(
            "more than one ':' but not an IPv6 address (write [address]:port)",
            address,
        )),
    }
}

/// A decimal port in 0-65535.
fn parse_port(text: &str) -> std::result::Result<u16, HostError> {
    if text.is_empty() {
        return Err(HostError::new("the port is empty", text));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HostError::new("the port is not an integer", text));
    }
    text.parse()
        .map_err(|_| HostError::new("the port is out of range 0-65535", text))
}

/// What Python's `ipaddress` accepts as IPv6: an address with an optional non-empty
/// `%zone` that holds no further `%`.
fn is_ipv6_literal(text: &str) -> bool {
    let (address, zone) = match text.split_once('%') {
        Some((address, zone)) => (address, Some(zone)),
        None => (text, None),
    };
    address.parse::<Ipv6Addr>().is_ok() && zone.is_none_or(|z| !z.is_empty() && !z.contains('%'))
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::DefaultHasher;
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};

    use super::*;

    fn host(
        hostname: Option<&str>,
        port: Option<u16>,
        username: Option<&str>,
        password: Option<&str>,
    ) -> TransportHost {
        TransportHost {
            hostname: hostname.map(str::to_string),
            port,
            username: username.map(str::to_string),
            password: password.map(str::to_string),
        }
    }

    fn url(transport: &str, virtual_host: Option<&str>, hosts: Vec<TransportHost>) -> TransportUrl {
        TransportUrl {
            transport: transport.to_string(),
            virtual_host: virtual_host.map(str::to_string),
            hosts,
            query: Vec::new(),
        }
    }

    fn parse_ok(text: &str) -> TransportUrl {
        TransportUrl::parse(text).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
    }

    /// The `(url, reason)` of the error parsing `text` gives.
    fn parse_err(text: &str) -> (String, String) {
        match TransportUrl::parse(text) {
            Err(Error::InvalidUrl { url, reason }) => (url, reason),
            Err(other) => panic!("{text:?}: unexpected error {other:?}"),
            Ok(parsed) => panic!("{text:?} should not parse, got {parsed:?}"),
        }
    }

    /// (scenario, url, transport, virtual_host, hosts)
    type ParseRow = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static [HostRow],
    );
    /// (scenario, transport, virtual_host, hosts, expected)
    type FormatRow = (
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static [HostRow],
        &'static str,
    );

    type HostRow = (
        Option<&'static str>,
        Option<u16>,
        Option<&'static str>,
        Option<&'static str>,
    );

    /// test_urls.py `TestParseURL.scenarios`, one row each: (scenario, url, transport,
    /// virtual_host, hosts as (host, port, username, password)).
    const PARSE_SCENARIOS: &[ParseRow] = &[
        ("transport", "foo:", "foo", None, &[]),
        ("virtual_host_slash", "foo:////", "foo", Some("/"), &[]),
        ("virtual_host", "foo:///bar", "foo", Some("bar"), &[]),
        (
            "host",
            "foo://host/bar",
            "foo",
            Some("bar"),
            &[(Some("host"), None, None, None)],
        ),
        (
            "ipv6_host",
            "foo://[ffff::1]/bar",
            "foo",
            Some("bar"),
            &[(Some("ffff::1"), None, None, None)],
        ),
        (
            "port",
            "foo://host:1234/bar",
            "foo",
            Some("bar"),
            &[(Some("host"), Some(1234), None, None)],
        ),
        (
            "ipv6_port",
            "foo://[ffff::1]:1234/bar",
            "foo",
            Some("bar"),
            &[(Some("ffff::1"), Some(1234), None, None)],
        ),
        (
            "username",
            "foo://u@host:1234/bar",
            "foo",
            Some("bar"),
            &[(Some("host"), Some(1234), Some("u"), None)],
        ),
        (
            "password",
            "foo://u:p@host:1234/bar",
            "foo",
            Some("bar"),
            &[(Some("host"), Some(1234), Some("u"), Some("p"))],
        ),
        (
            "creds_no_host",
            "foo://u:p@/bar",
            "foo",
            Some("bar"),
            &[(None, None, Some("u"), Some("p"))],
        ),
        (
            "multi_host",
            "foo://u:p@host1:1234,host2:4321/bar",
            "foo",
            Some("bar"),
            &[
                (Some("host1"), Some(1234), Some("u"), Some("p")),
                (Some("host2"), Some(4321), None, None),
            ],
        ),
        (
            "multi_host_partial_creds",
            "foo://u:p@host1,host2/bar",
            "foo",
            Some("bar"),
            &[
                (Some("host1"), None, Some("u"), Some("p")),
                (Some("host2"), None, None, None),
            ],
        ),
        (
            "multi_creds",
            "foo://u1:p1@host1:1234,u2:p2@host2:4321/bar",
            "foo",
            Some("bar"),
            &[
                (Some("host1"), Some(1234), Some("u1"), Some("p1")),
                (Some("host2"), Some(4321), Some("u2"), Some("p2")),
            ],
        ),
        (
            "multi_creds_ipv6",
            "foo://u1:p1@[ffff::1]:1234,u2:p2@[ffff::2]:4321/bar",
            "foo",
            Some("bar"),
            &[
                (Some("ffff::1"), Some(1234), Some("u1"), Some("p1")),
                (Some("ffff::2"), Some(4321), Some("u2"), Some("p2")),
            ],
        ),
        (
            "quoting",
            "foo://u%24:p%26@host:1234/%24",
            "foo",
            Some("$"),
            &[(Some("host"), Some(1234), Some("u$"), Some("p&"))],
        ),
    ];

    /// test_urls.py `TestFormatURL.scenarios`, one row each: (scenario, transport,
    /// virtual_host, hosts, expected `str()`).
    const FORMAT_SCENARIOS: &[FormatRow] = &[
        ("transport", "testtransport", None, &[], "testtransport:///"),
        (
            "virtual_host",
            "testtransport",
            Some("/vhost"),
            &[],
            "testtransport:////vhost",
        ),
        (
            "host",
            "testtransport",
            Some("/"),
            &[(Some("host"), Some(10), Some("bob"), Some("secret"))],
            "testtransport://bob:secret@host:10//",
        ),
        (
            "multi_host",
            "testtransport",
            Some(""),
            &[
                (Some("h1"), Some(1000), Some("b1"), Some("s1")),
                (Some("h2"), Some(2000), Some("b2"), Some("s2")),
            ],
            "testtransport://b1:s1@h1:1000,b2:s2@h2:2000/",
        ),
        (
            "quoting",
            "testtransport",
            Some("/$"),
            &[(Some("host"), Some(10), Some("b$"), Some("s&"))],
            "testtransport://b%24:s%26@host:10//%24",
        ),
    ];

    fn hosts_of(rows: &[HostRow]) -> Vec<TransportHost> {
        rows.iter()
            .map(|&(h, p, u, pw)| host(h, p, u, pw))
            .collect()
    }

    #[test]
    fn test_parse_url_scenarios() {
        for &(scenario, text, transport, vhost, hosts) in PARSE_SCENARIOS {
            let parsed = parse_ok(text);
            let expected = url(transport, vhost, hosts_of(hosts));
            assert_eq!(parsed, expected, "scenario {scenario}");
            // Eq skips the query; none of these URLs has one.
            assert!(parsed.query.is_empty(), "scenario {scenario}");
        }
    }

    #[test]
    fn test_format_url_scenarios() {
        for &(scenario, transport, vhost, hosts, expected) in FORMAT_SCENARIOS {
            let built = url(transport, vhost, hosts_of(hosts));
            assert_eq!(built.to_string(), expected, "scenario {scenario}");
        }
    }

    #[test]
    fn parse_scenarios_round_trip_through_display() {
        for &(scenario, text, ..) in PARSE_SCENARIOS {
            let parsed = parse_ok(text);
            let mut expected = parsed.clone();
            // `__str__` writes nothing for both None and "", which parses back as "".
            expected.virtual_host.get_or_insert_with(String::new);
            assert_eq!(
                parse_ok(&parsed.to_string()),
                expected,
                "scenario {scenario}"
            );
        }
    }

    #[test]
    fn format_scenarios_round_trip_through_parse() {
        for &(scenario, transport, vhost, hosts, expected) in FORMAT_SCENARIOS {
            let built = url(transport, Some(vhost.unwrap_or("")), hosts_of(hosts));
            assert_eq!(parse_ok(expected), built, "scenario {scenario}");
        }
    }

    #[test]
    fn virtual_host_none_empty_and_slash() {
        assert_eq!(parse_ok("rabbit://h").virtual_host, None);
        assert_eq!(parse_ok("rabbit://h/").virtual_host.as_deref(), Some(""));
        assert_eq!(parse_ok("rabbit://h//").virtual_host.as_deref(), Some("/"));
        assert_eq!(parse_ok("rabbit://h?a=1").virtual_host, None);
        assert_eq!(parse_ok("foo:/bar").virtual_host.as_deref(), Some("bar"));
        assert_eq!(parse_ok("foo:bar").virtual_host, None);
        assert_eq!(parse_ok("foo:bar").hosts, vec![]);
        // No hosts at all, and Display always ends the netloc with '/'.
        let bare = parse_ok("rabbit://");
        assert_eq!(bare.hosts, vec![]);
        assert_eq!(bare.virtual_host, None);
        assert_eq!(bare.to_string(), "rabbit:///");
        assert_eq!(parse_ok("rabbit://h").to_string(), "rabbit://h/");
    }

    #[test]
    fn scheme_is_lower_cased_and_keeps_extra() {
        let parsed = parse_ok("ZMQ+Redis://h:6379");
        assert_eq!(parsed.transport, "zmq+redis");
        assert_eq!(parsed.driver(), "zmq");
        assert_eq!(parse_ok("kafka://h").driver(), "kafka");
        assert_eq!(parse_ok("a1.b-c+d://").transport, "a1.b-c+d");
    }

    #[test]
    fn anything_before_a_colon_that_looks_like_a_scheme_is_one() {
        // Python 3.9+ urlsplit: "localhost:5672" has scheme "localhost" and path "5672".
        let parsed = parse_ok("localhost:5672");
        assert_eq!(parsed.transport, "localhost");
        assert_eq!(parsed.hosts, vec![]);
        assert_eq!(parsed.virtual_host, None);
    }

    #[test]
    fn missing_scheme_is_an_error() {
        for text in [
            "",
            "   ",
            "//h:5672/",
            "h",
            "1abc://h",
            "://h",
            "ra bbit://h",
            "_x://h",
        ] {
            let (_, reason) = parse_err(text);
            assert_eq!(reason, "No scheme specified", "{text:?}");
        }
    }

    #[test]
    fn leading_controls_are_stripped_and_tabs_newlines_removed() {
        let parsed = parse_ok(" \t\x01rabbit://h\n:56\r72/v\th");
        assert_eq!(parsed.hosts, vec![host(Some("h"), Some(5672), None, None)]);
        assert_eq!(parsed.virtual_host.as_deref(), Some("vh"));
        // Trailing spaces are kept, as in Python.
        assert_eq!(
            parse_ok("rabbit://h ").hosts[0].hostname.as_deref(),
            Some("h ")
        );
    }

    #[test]
    fn empty_host_elements_are_skipped() {
        let parsed = parse_ok("foo://,h1,,h2:1,/v");
        assert_eq!(
            parsed.hosts,
            vec![
                host(Some("h1"), None, None, None),
                host(Some("h2"), Some(1), None, None)
            ]
        );
    }

    #[test]
    fn userinfo_splits_on_last_at_then_first_colon() {
        assert_eq!(
            parse_ok("foo://u@d:p@h/").hosts,
            vec![host(Some("h"), None, Some("u@d"), Some("p"))]
        );
        assert_eq!(
            parse_ok("foo://u:p:q@h/").hosts,
            vec![host(Some("h"), None, Some("u"), Some("p:q"))]
        );
        assert_eq!(
            parse_ok("foo://u:p@q@h/").hosts,
            vec![host(Some("h"), None, Some("u"), Some("p@q"))]
        );
        assert_eq!(
            parse_ok("foo://:p@h/").hosts,
            vec![host(Some("h"), None, Some(""), Some("p"))]
        );
        assert_eq!(
            parse_ok("foo://@h/").hosts,
            vec![host(Some("h"), None, Some(""), None)]
        );
        assert_eq!(
            parse_ok("foo://u:@h/").hosts,
            vec![host(Some("h"), None, Some("u"), Some(""))]
        );
        // Nothing is inherited from the previous host.
        assert_eq!(
            parse_ok("foo://u:p@h1,h2").hosts[1],
            host(Some("h2"), None, None, None)
        );
    }

    #[test]
    fn user_password_and_vhost_are_percent_decoded_hostname_is_not() {
        let parsed = parse_ok("foo://%C3%A9%3A:p%40%2C%2F@h%41:1/v%2Fh%C3%A9");
        assert_eq!(
            parsed.hosts,
            vec![host(Some("h%41"), Some(1), Some("é:"), Some("p@,/"))]
        );
        assert_eq!(parsed.virtual_host.as_deref(), Some("v/hé"));
        // '+' is not a space outside the query.
        assert_eq!(
            parse_ok("foo://a+b@h/c+d").hosts[0].username.as_deref(),
            Some("a+b")
        );
        assert_eq!(
            parse_ok("foo://a+b@h/c+d").virtual_host.as_deref(),
            Some("c+d")
        );
        // Invalid escapes are kept literally, as Python's unquote does.
        let kept = parse_ok("foo://u%zz:p%4@h/%g1%");
        assert_eq!(kept.hosts[0].username.as_deref(), Some("u%zz"));
        assert_eq!(kept.hosts[0].password.as_deref(), Some("p%4"));
        assert_eq!(kept.virtual_host.as_deref(), Some("%g1%"));
    }

    #[test]
    fn bad_percent_encoding_is_an_error_naming_the_part() {
        for (text, part) in [
            ("foo://u%FF:p@h/", "user name of host 1"),
            ("foo://h0,u:p%C3%28@h/", "password of host 2"),
            ("foo://h/%FF", "virtual host"),
            ("foo://h/?a=1&%FF=2", "name of query parameter 2"),
            ("foo://h/?a=%E2%82", "value of query parameter 1"),
        ] {
            let (_, reason) = parse_err(text);
            assert!(reason.contains(part), "{text:?}: {reason}");
            assert!(reason.contains("UTF-8"), "{text:?}: {reason}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(parse_ok("foo://h:0").hosts[0].port, Some(0));
        assert_eq!(parse_ok("foo://h:65535").hosts[0].port, Some(65535));
        assert_eq!(parse_ok("foo://h:005672").hosts[0].port, Some(5672));
        // ":port" alone gives an empty (not missing) host name, as parse_host_port.
        assert_eq!(
            parse_ok("foo://:5672/").hosts,
            vec![host(Some(""), Some(5672), None, None)]
        );
        assert_eq!(parse_ok("foo://:5672/").to_string(), "foo://:5672/");
    }

    #[test]
    fn non_numeric_port_is_an_error_naming_it() {
        for (text, port) in [
            ("foo://h:abc/", "abc"),
            ("foo://h1,h:-1/", "-1"),
            ("foo://h:+80/", "+80"),
            ("foo://h: 80/", " 80"),
            ("foo://[::1]:8x/", "8x"),
        ] {
            let (_, reason) = parse_err(text);
            assert!(reason.contains("not an integer"), "{text:?}: {reason}");
            assert!(reason.contains(&format!("{port:?}")), "{text:?}: {reason}");
        }
        let (_, reason) = parse_err("foo://h1,h2:/");
        assert_eq!(reason, "host 2: the port is empty: \"\"");
        let (_, reason) = parse_err("foo://[::1]:/");
        assert!(reason.contains("empty"), "{reason}");
    }

    #[test]
    fn port_out_of_range_is_an_error_naming_it() {
        let (url, reason) = parse_err("foo://u:p@h:65536/v");
        assert_eq!(
            reason,
            "host 1: the port is out of range 0-65535: \"65536\""
        );
        assert_eq!(url, "foo://u:****@h:65536/v");
        let (_, reason) = parse_err("foo://[::1]:99999999999999999999999/");
        assert!(reason.contains("out of range"), "{reason}");
        assert!(reason.contains("99999999999999999999999"), "{reason}");
    }

    #[test]
    fn ipv6_hosts() {
        assert_eq!(
            parse_ok("foo://[::1]").hosts,
            vec![host(Some("::1"), None, None, None)]
        );
        // Bare IPv6: more than one ':' means no port, so the last group is not a port.
        assert_eq!(
            parse_ok("foo://::1/").hosts,
            vec![host(Some("::1"), None, None, None)]
        );
        assert_eq!(
            parse_ok("foo://ffff::1:5672/").hosts,
            vec![host(Some("ffff::1:5672"), None, None, None)]
        );
        assert_eq!(
            parse_ok("foo://[::ffff:1.2.3.4]:1").hosts,
            vec![host(Some("::ffff:1.2.3.4"), Some(1), None, None)]
        );
        let zoned = parse_ok("foo://[fe80::1%25eth0]:5672/");
        assert_eq!(zoned.hosts[0].hostname.as_deref(), Some("fe80::1%25eth0"));
        // Re-bracketed on output, with or without a port.
        assert_eq!(zoned.to_string(), "foo://[fe80::1%25eth0]:5672/");
        assert_eq!(parse_ok("foo://u:p@::1").to_string(), "foo://u:p@[::1]/");
        // A zone longer than oslo's 15 characters is bracketed too, or its port would
        // read as part of the zone (found by the `transport_url` fuzz target).
        let long_zone = parse_ok("foo://[fe80::1%0123456789abcdefg]:5672/");
        assert_eq!(
            long_zone.to_string(),
            "foo://[fe80::1%0123456789abcdefg]:5672/"
        );
        assert_eq!(parse_ok(&long_zone.to_string()), long_zone);
        assert_eq!(
            url(
                "t",
                None,
                vec![host(Some("ffff::1"), Some(1234), None, None)]
            )
            .to_string(),
            "t://[ffff::1]:1234/"
        );
    }

    #[test]
    fn unclosed_bracket_is_an_error() {
        let (_, reason) = parse_err("foo://[::1:5672/");
        assert_eq!(
            reason,
            "host 1: unclosed '[' (no matching ']'): \"[::1:5672\""
        );
        let (url, reason) = parse_err("foo://u:p@[::1/v");
        assert!(reason.contains("unclosed '['"), "{reason}");
        assert_eq!(url, "foo://u:****@[::1/v");
    }

    #[test]
    fn other_bracket_errors() {
        for (text, problem) in [
            ("foo://h]:1/", "outside an IPv6 address"),
            ("foo://h[::1]/", "outside an IPv6 address"),
            ("foo://[::1]x:80/", "after ']'"),
            ("foo://[::1]]/", "after ']'"),
            ("foo://[1.2.3.4]/", "not an IPv6 address inside"),
            ("foo://[host]:1/", "not an IPv6 address inside"),
            ("foo://[]/", "not an IPv6 address inside"),
            ("foo://[fe80::1%]/", "not an IPv6 address inside"),
            ("foo://a:b:c/", "more than one ':'"),
            ("foo://h:80:90/", "more than one ':'"),
        ] {
            let (_, reason) = parse_err(text);
            assert!(reason.contains(problem), "{text:?}: {reason}");
        }
    }

    #[test]
    fn query_is_parse_qs_with_repeats_joined() {
        let parsed = parse_ok("rabbit://h/?a=1&b=2&a=3&c&d=&e=x+y%21&&=n&f=a=b");
        assert_eq!(
            parsed.query,
            vec![
                ("a".to_string(), "1,3".to_string()),
                ("b".to_string(), "2".to_string()),
                ("e".to_string(), "x y!".to_string()),
                (String::new(), "n".to_string()),
                ("f".to_string(), "a=b".to_string()),
            ]
        );
        assert_eq!(parsed.query_value("a"), Some("1,3"));
        assert_eq!(parsed.query_value("c"), None);
        assert_eq!(parsed.query_value("zz"), None);
        assert_eq!(
            parsed.to_string(),
            "rabbit://h/?a=1%2C3&b=2&e=x+y%21&=n&f=a%3Db"
        );
        assert_eq!(parse_ok(&parsed.to_string()).query, parsed.query);
        // The query may follow the netloc directly.
        let direct = parse_ok("rabbit://h?rabbit_qos_prefetch_count=10");
        assert_eq!(direct.virtual_host, None);
        assert_eq!(direct.query_value("rabbit_qos_prefetch_count"), Some("10"));
    }

    #[test]
    fn fragment_is_dropped() {
        let parsed = parse_ok("foo://h/v#frag?x=1");
        assert_eq!(parsed.virtual_host.as_deref(), Some("v"));
        assert!(parsed.query.is_empty());
        assert_eq!(parse_ok("foo://h/v?x=1#f").query_value("x"), Some("1"));
        assert_eq!(
            parse_ok("foo://h#f").hosts,
            vec![host(Some("h"), None, None, None)]
        );
    }

    #[test]
    fn params_are_split_off_the_path_only_for_urlparse_param_schemes() {
        assert_eq!(parse_ok("http://h/a;b").virtual_host.as_deref(), Some("a"));
        assert_eq!(
            parse_ok("http://h/x;y/a;b").virtual_host.as_deref(),
            Some("x;y/a")
        );
        assert_eq!(
            parse_ok("rabbit://h/a;b").virtual_host.as_deref(),
            Some("a;b")
        );
    }

    #[test]
    fn display_quotes_like_python() {
        let built = TransportUrl {
            transport: "t".into(),
            virtual_host: Some("a b/c?#;é~".into()),
            hosts: vec![host(Some("h"), None, Some("a b/c@d:~_.-"), Some("é&+="))],
            query: vec![("k y".into(), "v/&=é".into())],
        };
        assert_eq!(
            built.to_string(),
            "t://a%20b%2Fc%40d%3A~_.-:%C3%A9%26%2B%3D@h/a%20b/c%3F%23%3B%C3%A9~?k+y=v%2F%26%3D%C3%A9"
        );
        assert_eq!(parse_ok(&built.to_string()), built);
        // Password without user name; host without anything.
        let odd = url(
            "t",
            None,
            vec![
                host(None, None, None, Some("p")),
                host(None, Some(1), None, None),
            ],
        );
        assert_eq!(odd.to_string(), "t://:p@,:1/");
        // Non-IPv6 host names with ':' are written as they are (netutils.escape_ipv6).
        assert_eq!(
            url("t", None, vec![host(Some("a:b"), None, None, None)]).to_string(),
            "t://a:b/"
        );
    }

    #[test]
    fn equality_and_hash_ignore_the_query_but_not_credentials() {
        fn hash_of(u: &TransportUrl) -> u64 {
            let mut h = DefaultHasher::new();
            u.hash(&mut h);
            h.finish()
        }
        let a = parse_ok("rabbit://u:p@h:1/v?a=1");
        let b = parse_ok("rabbit://u:p@h:1/v?b=2");
        assert_eq!(a, b);
        assert_eq!(hash_of(&a), hash_of(&b));
        assert_ne!(a, parse_ok("rabbit://u:q@h:1/v"));
        assert_ne!(a, parse_ok("rabbit://u:p@h:1/w"));
        assert_ne!(a, parse_ok("kafka://u:p@h:1/v"));
        assert_ne!(a, parse_ok("rabbit://u:p@h:1,h2/v"));
        assert_ne!(parse_ok("rabbit://h"), parse_ok("rabbit://h/"));
    }

    #[test]
    fn from_str_is_parse() {
        let parsed: TransportUrl = "rabbit://h".parse().unwrap();
        assert_eq!(parsed, parse_ok("rabbit://h"));
        assert!("nope".parse::<TransportUrl>().is_err());
    }

    #[test]
    fn masked_replaces_every_password() {
        let parsed = parse_ok("rabbit://u:s3cret@h:1,u2@h2,:x@h3,u4:@h4/v?q=1");
        assert_eq!(
            parsed.masked(),
            "rabbit://u:****@h:1,u2@h2,:****@h3,u4:****@h4/v?q=1"
        );
        assert!(parsed.to_string().contains("s3cret"));
    }

    #[test]
    fn debug_and_errors_never_show_the_password() {
        let parsed = parse_ok("rabbit://me:s3cret@h:5672,me:s3cret@[::1]/v");
        for shown in [
            format!("{parsed:?}"),
            format!("{parsed:#?}"),
            format!("{:?}", parsed.hosts[0]),
        ] {
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("****"), "{shown}");
        }
        for text in [
            "rabbit://me:s3cret@h:99999/v",
            "rabbit://me:s3cret@h:abc/v",
            "rabbit://me:s3cret@[::1/v",
            "rabbit://me:s3cret@h/%FF",
            "rabbit://me:s3cret@h/?a=%FF",
            "rabbit://h1,me:s3cret%FF@h2/",
            "//me:s3cret@h/",
            "rabbit//me:s3cret@h/",
            // Unencoded delimiters cut the password; the pieces must not show either.
            "rabbit://me:s3cret/x@h/",
            "rabbit://me:s3cret?x@h/",
            "rabbit://me:s3cret#x@h/",
            "rabbit://me:s3cret,x@h/",
            "rabbit://me:s3cret,x@h:1,h:2/?a=b@c",
        ] {
            let err = TransportUrl::parse(text).expect_err(text);
            for shown in [err.to_string(), format!("{err:?}")] {
                assert!(!shown.contains("s3cret"), "{text:?}: {shown}");
                assert!(!shown.contains("3cr"), "{text:?}: {shown}");
            }
        }
        // The cut-password case still says where to look.
        let (url, reason) = parse_err("rabbit://me:s3cret/x@h/");
        assert_eq!(url, "rabbit://****@h/");
        assert!(
            reason.starts_with("host 1: the port is not an integer"),
            "{reason}"
        );
        assert!(reason.contains("percent-encoded"), "{reason}");
        // A URL without credentials is shown as it is.
        let (url, _) = parse_err("rabbit://h:x/v");
        assert_eq!(url, "rabbit://h:x/v");
    }

    /// A subscriber that records the text of every WARN event.
    struct Recorder(Arc<Mutex<Vec<String>>>);

    struct FieldText(String);

    impl tracing::field::Visit for FieldText {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
            let _ = write!(self.0, "{}={:?} ", field.name(), value);
        }
    }

    impl tracing::Subscriber for Recorder {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if *event.metadata().level() == tracing::Level::WARN {
                let mut text = FieldText(String::new());
                event.record(&mut text);
                self.0.lock().unwrap().push(text.0);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    fn warnings_for(text: &str) -> Vec<String> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::with_default(Recorder(seen.clone()), || parse_ok(text));
        seen.lock().unwrap().clone()
    }

    #[test]
    fn warns_when_only_some_hosts_have_credentials() {
        let warnings = warnings_for("rabbit://u:s3cret@h1,h2,u@h3/");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("h1") && warnings[0].contains("h2"),
            "{warnings:?}"
        );
        assert!(warnings[0].contains("h3"), "{warnings:?}");
        assert!(!warnings[0].contains("s3cret"), "{warnings:?}");
        assert!(warnings_for("rabbit://u:p@h1,v:q@h2/").is_empty());
        assert!(warnings_for("rabbit://h1,h2/").is_empty());
        assert!(warnings_for("rabbit://u@h1,h2/").is_empty());
    }

    #[test]
    fn malformed_input_never_panics_and_valid_input_round_trips() {
        const ALPHABET: &[&str] = &[
            "a", "1", ":", "/", "@", "[", "]", ",", "%", "?", "#", "é", "%C3",
        ];
        let mut inputs = vec![String::new()];
        let mut frontier = inputs.clone();
        for _ in 0..4 {
            frontier = frontier
                .iter()
                .flat_map(|s| ALPHABET.iter().map(move |c| format!("{s}{c}")))
                .collect();
            inputs.extend(frontier.iter().cloned());
        }
        for body in &inputs {
            for prefix in ["f://", "f:", "", "f://::", "f://[::1]"] {
                let text = format!("{prefix}{body}");
                let Ok(parsed) = TransportUrl::parse(&text) else {
                    continue;
                };
                let shown = parsed.to_string();
                let mut expected = parsed.clone();
                expected.virtual_host.get_or_insert_with(String::new);
                let again = TransportUrl::parse(&shown)
                    .unwrap_or_else(|e| panic!("{text:?} -> {shown:?} does not parse: {e}"));
                assert_eq!(again, expected, "{text:?} -> {shown:?}");
                assert_eq!(again.query, parsed.query, "{text:?} -> {shown:?}");
                let _ = parsed.masked();
            }
        }
    }
}
