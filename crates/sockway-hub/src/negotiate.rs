//! `POST {hub}/negotiate` (`TransportProtocols.md`, "POST [endpoint-base]/negotiate").
//!
//! The client says which negotiate version it speaks (`negotiateVersion`, 0 when absent) and
//! whether it wants stateful reconnect (`useStatefulReconnect=true`); the server answers with
//! the version it will use (the client's, capped at 1), the public `connectionId`, for
//! version 1 a secret `connectionToken`, the transports it offers with their transfer formats,
//! and `useStatefulReconnect` when both sides want it. Query keys are matched ignoring case,
//! as ASP.NET Core's query collection does. Errors are `{"error": "..."}` with status 200,
//! which is what the clients read (ASP.NET Core's `ProcessNegotiate`).

use http::{Method, Request, Response, StatusCode};
use serde::Serialize;

use crate::auth::resolve_user;
use crate::link::TransportKind;
pub use crate::query::query_param;
use crate::response::{full, no_cache, HubBody};
use crate::service::{method_not_allowed, unauthorized, HubShared};
use crate::token;
pub use crate::transport::transport_entry;

/// The highest negotiate version there is.
pub const NEGOTIATE_VERSION: u32 = 1;

/// What the client asked for in the negotiate query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NegotiateQuery {
    /// The version to answer with (the client's, capped at [`NEGOTIATE_VERSION`]).
    pub version: u32,
    /// `useStatefulReconnect=true` was in the query.
    pub stateful_reconnect: bool,
}

/// Reads the negotiate query; `Err` holds the error to answer with.
pub(crate) fn parse_query(query: Option<&str>) -> Result<NegotiateQuery, String> {
    let version = match query_param(query, "negotiateVersion") {
        None => 0,
        Some(text) => match text.trim().parse::<i64>() {
            Ok(version) if version < 0 => {
                return Err(format!(
                    "The client requested version '{version}', but the server does not support \
                     this version."
                ))
            }
            Ok(version) => u32::try_from(version.min(i64::from(NEGOTIATE_VERSION)))
                .unwrap_or(NEGOTIATE_VERSION),
            Err(_) => return Err("The client requested a non-integer protocol version.".into()),
        },
    };
    let stateful_reconnect = query_param(query, "useStatefulReconnect")
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
    Ok(NegotiateQuery {
        version,
        stateful_reconnect,
    })
}

#[derive(Serialize)]
struct AvailableTransport {
    transport: &'static str,
    #[serde(rename = "transferFormats")]
    transfer_formats: &'static [&'static str],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NegotiateResponse<'a> {
    connection_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_token: Option<&'a str>,
    negotiate_version: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    use_stateful_reconnect: bool,
    available_transports: Vec<AvailableTransport>,
}

/// A successful negotiate body. `token` is `None` for version 0, whose clients use the id.
pub(crate) fn success_body(
    connection_id: &str,
    token: Option<&str>,
    version: u32,
    stateful_reconnect: bool,
    transports: &[TransportKind],
) -> Vec<u8> {
    let response = NegotiateResponse {
        connection_id,
        connection_token: token,
        negotiate_version: version,
        use_stateful_reconnect: stateful_reconnect,
        available_transports: transports
            .iter()
            .map(|kind| {
                let (transport, transfer_formats) = transport_entry(*kind);
                AvailableTransport {
                    transport,
                    transfer_formats,
                }
            })
            .collect(),
    };
    serde_json::to_vec(&response).unwrap_or_default()
}

/// An error body, `{"error": "..."}`.
pub(crate) fn error_body(message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default()
}

/// The status of an error negotiate response: 200, as ASP.NET Core answers, so clients read
/// the `error` field instead of failing on the status.
pub(crate) const ERROR_STATUS: StatusCode = StatusCode::OK;

/// Answers `{hub}/negotiate`: `POST` only (405 otherwise), authenticated (401), then a new
/// connection or an error body.
pub(crate) async fn handle<B>(shared: &HubShared, request: Request<B>) -> Response<HubBody> {
    if request.method() != Method::POST {
        return method_not_allowed("POST");
    }
    if let Err(refused) = resolve_user(
        shared.options.authenticator.as_ref(),
        request.headers(),
        request.uri(),
    )
    .await
    {
        return unauthorized(&refused.0);
    }
    let body = match parse_query(request.uri().query()) {
        Err(error) => return json(ERROR_STATUS, error_body(&error)),
        Ok(query) => {
            let stateful = query.stateful_reconnect && shared.options.stateful_reconnect;
            let (id, token) = new_identity(
                &shared.options.token_key,
                query.version,
                stateful,
                shared.options.token_lifetime,
            );
            if let Err(refused) = shared.store.create(token.clone(), id.clone(), stateful) {
                return json(ERROR_STATUS, error_body(refused.reason()));
            }
            let token = (query.version > 0).then_some(token.as_str());
            success_body(
                &id,
                token,
                query.version,
                stateful,
                &shared.options.transports,
            )
        }
    };
    json(StatusCode::OK, body)
}

fn json(status: StatusCode, body: Vec<u8>) -> Response<HubBody> {
    let mut response = full(status, "application/json", body);
    no_cache(response.headers_mut());
    response
}

/// A fresh connection id and token for negotiate `version`: version 0 has no token, so its
/// id is the (signed) token itself; version 1 gets a public id and a secret token.
pub(crate) fn new_identity(
    key: &token::TokenKey,
    version: u32,
    stateful: bool,
    lifetime: std::time::Duration,
) -> (String, String) {
    let (token, claims) = token::issue(key, version, stateful, lifetime);
    (claims.public_id(&token), token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_capped_and_keys_ignore_case() {
        assert_eq!(parse_query(None).unwrap().version, 0);
        assert_eq!(parse_query(Some("negotiateVersion=1")).unwrap().version, 1);
        assert_eq!(parse_query(Some("NEGOTIATEVERSION=7")).unwrap().version, 1);
        assert!(parse_query(Some("negotiateVersion=x")).is_err());
        assert!(parse_query(Some("negotiateVersion=-1")).is_err());
        let q = parse_query(Some("negotiateversion=1&usestatefulreconnect=True")).unwrap();
        assert!(q.stateful_reconnect);
        assert!(
            !parse_query(Some("useStatefulReconnect=no"))
                .unwrap()
                .stateful_reconnect
        );
    }

    #[test]
    fn query_values_are_percent_decoded() {
        assert_eq!(
            query_param(Some("a=1&access_token=x%2By+z%"), "ACCESS_TOKEN").as_deref(),
            Some("x+y z%")
        );
        assert_eq!(query_param(Some("id"), "id").as_deref(), Some(""));
        assert_eq!(query_param(Some("%zz=1"), "id"), None);
    }

    #[test]
    fn version_0_has_no_token_and_version_1_has_both() {
        let v1 = success_body(
            "id",
            Some("tok"),
            1,
            true,
            &[TransportKind::ServerSentEvents],
        );
        let v1: serde_json::Value = serde_json::from_slice(&v1).unwrap();
        assert_eq!(v1["connectionToken"], "tok");
        assert_eq!(v1["useStatefulReconnect"], true);
        assert_eq!(
            v1["availableTransports"][0]["transferFormats"],
            serde_json::json!(["Text"])
        );
        let v0 = success_body("id", None, 0, false, &[]);
        let v0: serde_json::Value = serde_json::from_slice(&v0).unwrap();
        assert!(v0.get("connectionToken").is_none());
        assert!(v0.get("useStatefulReconnect").is_none());
        assert_eq!(v0["negotiateVersion"], 0);
    }
}
