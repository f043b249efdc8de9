//! The authentication hook: who is connecting.
//!
//! The SignalR clients send a bearer token in the `Authorization` header, or, where a browser
//! cannot set headers (WebSockets, `EventSource`), in the `access_token` query parameter (the
//! JavaScript client's `accessTokenFactory`; ASP.NET Core's docs tell JWT users to read it from
//! there). The application resolves the token to a user id; a refusal is answered with 401 on
//! negotiate and on every transport request, as ASP.NET Core's `[Authorize]` does.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use http::header::AUTHORIZATION;
use http::HeaderMap;

use crate::query::query_param;

/// What the hook is given: the bearer token, if the request carried one, and the request.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    /// The token from `Authorization: Bearer ...`, or else from `?access_token=`.
    pub token: Option<&'a str>,
    /// The request's headers (cookies, custom schemes).
    pub headers: &'a HeaderMap,
    /// The request's URI.
    pub uri: &'a http::Uri,
}

/// Why the hook refused a request; the text goes into the 401 response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthRefused(pub String);

/// The application's answer: `Ok(Some(user))` for a known user, `Ok(None)` for an anonymous
/// connection that is still allowed, `Err` to refuse with 401.
pub type AuthResult = Result<Option<String>, AuthRefused>;

/// Resolves requests to users. Implemented for any `Fn(AuthRequest) -> BoxFuture<AuthResult>`.
pub trait Authenticator: Send + Sync + 'static {
    /// Resolves the request's credentials; owns what it needs past the call.
    fn authenticate(&self, request: AuthRequest<'_>) -> BoxFuture<'static, AuthResult>;
}

impl<F> Authenticator for F
where
    F: Fn(AuthRequest<'_>) -> BoxFuture<'static, AuthResult> + Send + Sync + 'static,
{
    fn authenticate(&self, request: AuthRequest<'_>) -> BoxFuture<'static, AuthResult> {
        self(request)
    }
}

/// A shared authenticator.
pub type SharedAuthenticator = Arc<dyn Authenticator>;

/// The bearer token of a request: the `Authorization: Bearer` header first, then the
/// `access_token` query parameter.
pub fn bearer_token(headers: &HeaderMap, uri: &http::Uri) -> Option<String> {
    let from_header = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .filter(|token| !token.is_empty());
    from_header.or_else(|| query_param(uri.query(), "access_token").filter(|t| !t.is_empty()))
}

/// Runs `authenticator` (if any) on a request: the user, or the refusal.
pub async fn resolve_user(
    authenticator: Option<&SharedAuthenticator>,
    headers: &HeaderMap,
    uri: &http::Uri,
) -> AuthResult {
    let Some(authenticator) = authenticator else {
        return Ok(None);
    };
    let token = bearer_token(headers, uri);
    let request = AuthRequest {
        token: token.as_deref(),
        headers,
        uri,
    };
    authenticator.authenticate(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_wins_over_the_query() {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, "Bearer abc".parse().unwrap());
        let uri: http::Uri = "/hub?access_token=xyz".parse().unwrap();
        assert_eq!(bearer_token(&headers, &uri).as_deref(), Some("abc"));
        assert_eq!(
            bearer_token(&HeaderMap::new(), &uri).as_deref(),
            Some("xyz")
        );
        headers.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers, &uri).as_deref(), Some("xyz"));
        let bare: http::Uri = "/hub".parse().unwrap();
        assert_eq!(bearer_token(&HeaderMap::new(), &bare), None);
    }
}
