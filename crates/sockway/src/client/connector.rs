//! The connect sequence: parse the URL, pick the HTTP version ([`HttpVersion`]), then the
//! HTTP/1.1 upgrade ([`super::h1`], RFC 6455 section 4.1) or an extended CONNECT on a pooled
//! HTTP/2 connection ([`super::h2`], RFC 8441), falling back to HTTP/1.1 when HTTP/2 says so;
//! dialing ([`super::dial`]) and every step run under one connect deadline, each step
//! reporting its own phase when the deadline passes.

use tokio::time::Instant;

use super::dial::{Attempt, Connected};
use super::error::ClientError;
use super::h2::Http2Outcome;
use super::settings::Settings;
use super::url::Target;
use super::version::HttpVersion;
use super::{h1, h2};

/// Connects with `settings`; dropping the future drops every socket it opened.
pub(crate) async fn connect(settings: &Settings) -> Result<Connected, ClientError> {
    match &settings.cancel {
        Some(token) => tokio::select! {
            biased;
            () = token.cancelled() => Err(ClientError::Cancelled),
            result = connect_inner(settings) => result,
        },
        None => connect_inner(settings).await,
    }
}

async fn connect_inner(settings: &Settings) -> Result<Connected, ClientError> {
    let started = Instant::now();
    let target = Target::parse(&settings.url)?;
    let attempt = Attempt {
        settings,
        target: &target,
        started,
        deadline: started + settings.connect_timeout,
    };
    match (settings.http_version, target.secure) {
        (HttpVersion::Http1Only, _) | (HttpVersion::Auto, false) => {
            h1::connect(&attempt, None).await
        }
        (HttpVersion::Http2Only, _) | (HttpVersion::Auto, true) => {
            match h2::connect(&attempt).await? {
                Http2Outcome::Connected(connected) => Ok(connected),
                Http2Outcome::UseHttp1(transport) => h1::connect(&attempt, transport).await,
            }
        }
    }
}
