//! The `Origin` check (RFC 6455 section 10.2). Browsers always send `Origin`, and CORS does not
//! apply to WebSockets, so this check is what stops another site's page from opening a socket
//! with the user's cookies (cross-site WebSocket hijacking). It is no authentication: any
//! non-browser client can send whatever `Origin` it likes.
//!
//! One rule for every server: the async server, the event-loop server and the gateway all
//! decide with [`OriginPolicy::allows`].

/// Which origins may open a WebSocket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OriginPolicy {
    /// Any origin, and requests without one (the default, as with ASP.NET Core's empty
    /// `AllowedOrigins`).
    #[default]
    Any,
    /// Only these origins, compared on scheme, host and port, ASCII case-insensitively, with
    /// default ports made explicit (`https://a.example` equals `https://A.example:443`).
    /// Requests without `Origin` come from non-browser clients, which could forge it anyway,
    /// and are allowed.
    List(Vec<String>),
}

impl OriginPolicy {
    /// A policy allowing `origins`; an empty list allows any. Entries that are not origins
    /// (`scheme://host[:port]`, see [`OriginPolicy::is_origin`]) are skipped, but a non-empty
    /// list never turns into "any": if every entry is invalid, only requests without `Origin`
    /// pass. Use [`OriginPolicy::try_list`] to reject such entries instead.
    pub fn list<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut any_given = false;
        let mut list = Vec::new();
        for origin in origins {
            any_given = true;
            list.extend(normalize(origin.as_ref()));
        }
        if any_given {
            Self::List(list)
        } else {
            Self::Any
        }
    }

    /// Like [`OriginPolicy::list`], but fails on the first entry that is not an origin
    /// (`scheme://host[:port]`, e.g. `https://client.example`), for configuration checks.
    pub fn try_list<I, S>(origins: I) -> Result<Self, InvalidOrigin>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list = Vec::new();
        for origin in origins {
            let origin = origin.as_ref();
            list.push(normalize(origin).ok_or_else(|| InvalidOrigin(origin.to_owned()))?);
        }
        Ok(if list.is_empty() {
            Self::Any
        } else {
            Self::List(list)
        })
    }

    /// Whether `origin` is an origin as [`OriginPolicy::list`] understands it
    /// (`scheme://host[:port]`, RFC 6454 section 6.1); the opaque `null` origin is not.
    pub fn is_origin(origin: &str) -> bool {
        normalize(origin).is_some()
    }

    /// Whether a request with this `Origin` header (or none) may connect.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match (self, origin) {
            (Self::Any, _) | (Self::List(_), None) => true,
            (Self::List(list), Some(origin)) => {
                normalize(origin).is_some_and(|o| list.contains(&o))
            }
        }
    }
}

/// An allowed-origin entry that is not of the form `scheme://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an origin: expected scheme://host[:port], e.g. https://client.example")]
pub struct InvalidOrigin(pub String);

/// `scheme://host:port` in lower case with the port explicit; `None` if it is not an origin
/// (the opaque `null` origin included).
fn normalize(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.trim_end_matches('/');
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok || authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return None;
    }
    let default_port = match scheme.as_str() {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        _ => return Some(format!("{scheme}://{}", authority.to_ascii_lowercase())),
    };
    let authority = authority.to_ascii_lowercase();
    let has_port = match authority.rfind(':') {
        Some(i) => {
            !authority.ends_with(']')
                && authority[i + 1..].bytes().all(|b| b.is_ascii_digit())
                && i + 1 < authority.len()
        }
        None => false,
    };
    Some(if has_port {
        format!("{scheme}://{authority}")
    } else {
        format!("{scheme}://{authority}:{default_port}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_on_scheme_host_and_port_ignoring_case() {
        let policy = OriginPolicy::list(["https://App.example", "http://localhost:5000"]);
        assert!(policy.allows(Some("https://app.example")));
        assert!(policy.allows(Some("HTTPS://APP.EXAMPLE:443")));
        assert!(policy.allows(Some("http://localhost:5000")));
        assert!(!policy.allows(Some("http://app.example")));
        assert!(!policy.allows(Some("https://app.example:8443")));
        assert!(!policy.allows(Some("https://evil.example")));
        assert!(!policy.allows(Some("null")));
        assert!(policy.allows(None), "non-browser clients send no Origin");
        assert!(OriginPolicy::list(Vec::<String>::new()).allows(Some("https://any.example")));
    }

    #[test]
    fn invalid_entries_never_widen_the_policy() {
        let policy = OriginPolicy::list(["client.example"]);
        assert!(!policy.allows(Some("https://client.example")));
        assert!(!policy.allows(Some("https://evil.example")));
        assert!(OriginPolicy::try_list(["client.example"]).is_err());
        assert_eq!(
            OriginPolicy::try_list(["https://a.example"]),
            Ok(OriginPolicy::list(["https://A.example:443"]))
        );
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let policy = OriginPolicy::list(["http://[::1]:8080"]);
        assert!(policy.allows(Some("http://[::1]:8080")));
        assert!(!policy.allows(Some("http://[::1]")));
        assert!(OriginPolicy::list(["http://[::1]"]).allows(Some("http://[::1]:80")));
    }
}
