//! Hiding secrets in `Debug` output.

/// What a hidden secret is shown as.
pub(crate) const MASK: &str = "****";

/// Replaces the password of every host of a transport URL with [`MASK`]:
/// `rabbit://nova:pw@h1:5672,nova:pw2@h2/` becomes
/// `rabbit://nova:****@h1:5672,nova:****@h2/`.
///
/// The URL is split the way oslo.messaging's `TransportURL.parse` does (netloc up to
/// the first `/`, `?` or `#`, hosts separated by `,`, credentials before the last
/// `@` of a host). When that reading is doubtful (an unencoded `,`, `/`, `?` or `#`
/// in a password), everything between `://` and the last `@` is masked instead, so
/// no part of a password can show.
pub(crate) fn mask_url_password(url: &str) -> String {
    let (prefix, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (netloc, tail) = rest.split_at(end);
    let mut clear = !tail.contains('@');
    let mut hosts = Vec::new();
    for host in netloc.split(',') {
        match host.rfind('@') {
            Some(at) => {
                let (userinfo, hostport) = host.split_at(at);
                match userinfo.find(':') {
                    Some(colon) => hosts.push(format!("{}:{MASK}{hostport}", &userinfo[..colon])),
                    None => hosts.push(host.to_string()),
                }
            }
            None => {
                clear &= plausible_host(host);
                hosts.push(host.to_string());
            }
        }
    }
    if clear {
        format!("{prefix}{}{tail}", hosts.join(","))
    } else {
        match rest.rfind('@') {
            Some(at) => format!("{prefix}{MASK}{}", &rest[at..]),
            // No credentials anywhere, only an odd host list: nothing to hide.
            None => url.to_string(),
        }
    }
}

/// Whether `host` reads as `host`, `host:port`, `[v6]` or `[v6]:port` (not as the
/// `user:pass` half of a password cut in two by a comma).
fn plausible_host(host: &str) -> bool {
    let port = if let Some(v6) = host.strip_prefix('[') {
        match v6.find(']') {
            Some(close) => match &v6[close + 1..] {
                "" => return true,
                p => match p.strip_prefix(':') {
                    Some(port) => port,
                    None => return false,
                },
            },
            None => return false,
        }
    } else {
        match host.split_once(':') {
            Some((_, port)) => port,
            None => return true,
        }
    };
    port.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_host_password() {
        for (url, want) in [
            ("rabbit://", "rabbit://"),
            ("rabbit://h1:5672/", "rabbit://h1:5672/"),
            ("rabbit://nova@h1/", "rabbit://nova@h1/"),
            (
                "rabbit://nova:pw1@h1:5672,nova:pw2@h2:5672/vhost?ssl=1",
                "rabbit://nova:****@h1:5672,nova:****@h2:5672/vhost?ssl=1",
            ),
            ("kafka://u:p@[::1]:9092", "kafka://u:****@[::1]:9092"),
            ("rabbit://u:p@ss:w0rd@h/", "rabbit://u:****@h/"),
            ("rabbit://u:pa/ss@h/", "rabbit://****@h/"),
            ("rabbit://u:pa#ss@h/", "rabbit://****@h/"),
            ("rabbit://u:pa,ss@h/", "rabbit://****@h/"),
            ("rabbit://u:pa,ss@h1,u:x@h2/", "rabbit://****@h2/"),
            ("rabbit://[::1]:5672,h2/", "rabbit://[::1]:5672,h2/"),
            ("u:secret@host", "u:****@host"),
        ] {
            assert_eq!(mask_url_password(url), want, "{url}");
        }
    }
}
