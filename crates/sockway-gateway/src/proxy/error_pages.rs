//! Custom error pages (`customErrorConfigurations`): the body of a response the gateway
//! makes itself (502 when no backend is healthy, 504, 503 over a limit, ...) is replaced by
//! the page configured for its status, the listener's own first, then the gateway-wide one.
//! Responses that backends send are passed on untouched, as in Application Gateway.

use std::collections::HashMap;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Response};

use super::body::{full, ProxyBody};
use crate::config::{CustomErrorConfiguration, GatewayConfig};
use crate::error::GatewayError;

/// Pages by (listener name, or `None` for the gateway-wide ones, status).
#[derive(Debug, Clone, Default)]
pub struct ErrorPages(HashMap<(Option<String>, u16), Bytes>);

impl ErrorPages {
    /// Reads every page file of a validated configuration.
    pub fn load(config: &GatewayConfig) -> Result<ErrorPages, GatewayError> {
        let mut pages = HashMap::new();
        let mut read = |listener: Option<&str>, list: &[CustomErrorConfiguration]| {
            for page in list {
                let (status, Some(file)) = (page.status(), page.file()) else {
                    continue;
                };
                let bytes = std::fs::read(file).map_err(|source| GatewayError::ErrorPage {
                    file: file.to_owned(),
                    source,
                })?;
                pages.insert((listener.map(str::to_owned), status), Bytes::from(bytes));
            }
            Ok::<(), GatewayError>(())
        };
        read(None, &config.custom_error_configurations)?;
        for l in &config.http_listeners {
            read(Some(&l.name), &l.custom_error_configurations)?;
        }
        Ok(ErrorPages(pages))
    }

    /// `response` with its body replaced by the page for its status on `listener`, if any.
    pub fn apply(&self, listener: &str, response: Response<ProxyBody>) -> Response<ProxyBody> {
        if self.0.is_empty() {
            return response;
        }
        let status = response.status().as_u16();
        let page = self
            .0
            .get(&(Some(listener.to_owned()), status))
            .or_else(|| self.0.get(&(None, status)));
        let Some(page) = page else {
            return response;
        };
        let (mut parts, _) = response.into_parts();
        parts.headers.remove(CONTENT_LENGTH);
        parts.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        Response::from_parts(parts, full(page.clone()))
    }
}
