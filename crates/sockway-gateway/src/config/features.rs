//! The model of redirects, header rewrites and custom error pages, in Application Gateway's
//! shape (`redirectConfigurations`, `rewriteRuleSets`, `customErrorConfigurations`).

use serde::{Deserialize, Serialize};

use super::values::{ErrorStatus, FieldName, HeaderTemplate};

/// How a redirect answers: Application Gateway's four types, plus 308.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum RedirectType {
    /// 301 Moved Permanently.
    #[default]
    Permanent,
    /// 302 Found.
    Found,
    /// 303 See Other.
    SeeOther,
    /// 307 Temporary Redirect (keeps the method and body, RFC 9110 section 15.4.8).
    Temporary,
    /// 308 Permanent Redirect (keeps the method and body, RFC 9110 section 15.4.9); not
    /// one of Application Gateway's types.
    PermanentRedirect,
}

impl RedirectType {
    /// The status code.
    pub fn status(self) -> u16 {
        match self {
            RedirectType::Permanent => 301,
            RedirectType::Found => 302,
            RedirectType::SeeOther => 303,
            RedirectType::Temporary => 307,
            RedirectType::PermanentRedirect => 308,
        }
    }
}

/// A redirect (`redirectConfigurations[]`), used by a rule's `redirectConfiguration`: to
/// another listener (HTTP to HTTPS, say) or to a URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedirectConfiguration {
    /// Unique name.
    pub name: String,
    /// The status; default `Permanent` (301).
    #[serde(default)]
    pub redirect_type: RedirectType,
    /// A listener to send the client to: its scheme and port, the request's host.
    #[serde(default)]
    pub target_listener: Option<String>,
    /// An absolute `http`/`https` URL to send the client to.
    #[serde(default)]
    pub target_url: Option<String>,
    /// Append the request's path; default false, as in Application Gateway.
    #[serde(default)]
    pub include_path: bool,
    /// Append the request's query string; default false.
    #[serde(default)]
    pub include_query_string: bool,
}

/// One header to set (or, with an empty value, remove).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderConfiguration {
    /// The header's name.
    pub header_name: FieldName,
    /// Its value, with server variables like `{var_client_ip}` or `{http_req_Origin}`; empty
    /// removes the header, as in Application Gateway.
    #[serde(default = "empty_template")]
    pub header_value: HeaderTemplate,
}

/// What a rewrite rule does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RewriteActionSet {
    /// Headers of the request sent to the backend.
    #[serde(default)]
    pub request_header_configurations: Vec<HeaderConfiguration>,
    /// Headers of the response sent to the client.
    #[serde(default)]
    pub response_header_configurations: Vec<HeaderConfiguration>,
}

/// One rewrite rule; rules run in `ruleSequence` order (conditions are not implemented: a
/// rule applies to every request of its rules).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RewriteRule {
    /// Name, unique within the set.
    pub name: String,
    /// Order among the set's rules (lower first); default 100 as in Application Gateway.
    #[serde(default = "default_sequence")]
    pub rule_sequence: u32,
    /// The header changes.
    #[serde(default)]
    pub action_set: RewriteActionSet,
}

fn empty_template() -> HeaderTemplate {
    HeaderTemplate::empty()
}

fn default_sequence() -> u32 {
    100
}

/// A rewrite rule set (`rewriteRuleSets[]`), used by a rule's `rewriteRuleSet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RewriteRuleSet {
    /// Unique name.
    pub name: String,
    /// Its rules.
    #[serde(default)]
    pub rewrite_rules: Vec<RewriteRule>,
}

/// A custom error page (`customErrorConfigurations[]`, top-level or per listener): the body
/// of the gateway's own responses with that status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomErrorConfiguration {
    /// Application Gateway's spelling, `HttpStatus502`, or the bare number.
    pub status_code: ErrorStatus,
    /// An HTML file (at most 1 MiB), read when the configuration loads. Application
    /// Gateway fetches `customErrorPageUrl` instead; sockway reads files only.
    #[serde(default)]
    pub custom_error_page_file: Option<String>,
    /// Application Gateway's page URL: accepted only as a `file://` URL.
    #[serde(default)]
    pub custom_error_page_url: Option<String>,
}

impl CustomErrorConfiguration {
    /// The status, from `HttpStatus502` or `502`.
    pub fn status(&self) -> u16 {
        self.status_code.get()
    }

    /// The file to read: `customErrorPageFile`, or the path of a `file://` page URL.
    pub fn file(&self) -> Option<&str> {
        self.custom_error_page_file.as_deref().or_else(|| {
            self.custom_error_page_url
                .as_deref()
                .and_then(|u| u.strip_prefix("file://"))
        })
    }
}
