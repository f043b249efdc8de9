//! Validation of redirects, rewrite rule sets and custom error pages, with the same exact
//! paths as the rest of [`super::validate()`].

use std::collections::HashSet;

use super::issue::Issue;
use super::{CustomErrorConfiguration, GatewayConfig};

/// The largest custom error page, bytes: it is held in memory and sent as is.
pub const MAX_ERROR_PAGE_BYTES: u64 = 1 << 20;

/// Every problem of the redirect, rewrite and error-page parts of `c`.
pub(super) fn validate(c: &GatewayConfig) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut push = |path: String, message: String| issues.push(Issue::new(path, message));
    let listeners: Vec<&str> = c.http_listeners.iter().map(|l| l.name.as_str()).collect();
    let redirects: Vec<&str> = c
        .redirect_configurations
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    let rewrites: Vec<&str> = c
        .rewrite_rule_sets
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    unique("redirectConfigurations", &redirects, &mut push);
    unique("rewriteRuleSets", &rewrites, &mut push);
    for (i, r) in c.redirect_configurations.iter().enumerate() {
        let p = |f: &str| format!("redirectConfigurations[{i}].{f}");
        match (&r.target_listener, &r.target_url) {
            (Some(_), Some(_)) | (None, None) => push(
                p("targetListener"),
                "give exactly one of targetListener and targetUrl".into(),
            ),
            (Some(l), None) if !listeners.contains(&l.as_str()) => {
                push(p("targetListener"), format!("no listener named {l:?}"))
            }
            (None, Some(url)) if !valid_url(url) => push(
                p("targetUrl"),
                format!("{url:?} is not an absolute http:// or https:// URL"),
            ),
            _ => {}
        }
    }
    for (i, r) in c.request_routing_rules.iter().enumerate() {
        let p = |f: &str| format!("requestRoutingRules[{i}].{f}");
        if let Some(name) = &r.redirect_configuration {
            if !redirects.contains(&name.as_str()) {
                push(
                    p("redirectConfiguration"),
                    format!("no redirect named {name:?}"),
                );
            }
            if r.backend_address_pool.is_some() || r.url_path_map.is_some() {
                push(
                    p("redirectConfiguration"),
                    "a redirecting rule forwards nothing: remove its pool, settings or path map"
                        .into(),
                );
            }
        }
        if let Some(name) = &r.rewrite_rule_set {
            if !rewrites.contains(&name.as_str()) {
                push(
                    p("rewriteRuleSet"),
                    format!("no rewrite rule set named {name:?}"),
                );
            }
        }
    }
    pages(
        "customErrorConfigurations",
        &c.custom_error_configurations,
        &mut push,
    );
    for (i, l) in c.http_listeners.iter().enumerate() {
        let path = format!("httpListeners[{i}].customErrorConfigurations");
        pages(&path, &l.custom_error_configurations, &mut push);
    }
    issues
}

fn unique(section: &str, names: &[&str], push: &mut impl FnMut(String, String)) {
    let mut seen = HashSet::new();
    for (i, name) in names.iter().enumerate() {
        if !seen.insert(*name) {
            push(
                format!("{section}[{i}].name"),
                format!("duplicate name {name:?}"),
            );
        }
    }
}

fn valid_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'))
        && http::HeaderValue::from_str(url).is_ok()
}

fn pages(section: &str, pages: &[CustomErrorConfiguration], push: &mut impl FnMut(String, String)) {
    let mut seen = HashSet::new();
    for (i, page) in pages.iter().enumerate() {
        let p = |f: &str| format!("{section}[{i}].{f}");
        let status = page.status();
        if !seen.insert(status) {
            push(p("statusCode"), format!("{status} is listed twice"));
        }
        match page.file() {
            None => push(
                p("customErrorPageFile"),
                "give a file (customErrorPageUrl is only read as a file:// URL)".into(),
            ),
            Some(file) => match std::fs::metadata(file) {
                Err(e) => push(p("customErrorPageFile"), format!("cannot read {file}: {e}")),
                Ok(m) if m.len() > MAX_ERROR_PAGE_BYTES => push(
                    p("customErrorPageFile"),
                    format!("{file} is larger than {MAX_ERROR_PAGE_BYTES} bytes"),
                ),
                Ok(_) => {}
            },
        }
    }
}
