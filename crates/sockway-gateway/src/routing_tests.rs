use super::*;
use crate::config::{from_str, Format};

const CONFIG: &str = r#"{
  "httpListeners": [
    {"name": "basic", "port": 8080},
    {"name": "siteA", "port": 8081, "hostNames": ["a.example.com"]},
    {"name": "siteWild", "port": 8081, "hostNames": ["*.example.com"]},
    {"name": "siteDeep", "port": 8081, "hostNames": ["*.deep.example.com"]},
    {"name": "siteAny", "port": 8081}
  ],
  "backendAddressPools": [
    {"name": "p1", "backendAddresses": [{"ipAddress": "127.0.0.1"}]},
    {"name": "p2", "backendAddresses": [{"ipAddress": "127.0.0.1"}]},
    {"name": "p3", "backendAddresses": [{"ipAddress": "127.0.0.1"}]}
  ],
  "backendHttpSettingsCollection": [{"name": "s", "port": 9000}],
  "urlPathMaps": [{
    "name": "map", "defaultBackendAddressPool": "p1", "defaultBackendHttpSettings": "s",
    "pathRules": [
      {"name": "chat", "paths": ["/chat/*"], "backendAddressPool": "p2", "backendHttpSettings": "s"},
      {"name": "chatRoom", "paths": ["/chat/room/*"], "backendAddressPool": "p3", "backendHttpSettings": "s"},
      {"name": "api", "paths": ["/API"], "backendAddressPool": "p3", "backendHttpSettings": "s"},
      {"name": "apiAll", "paths": ["/*"], "backendAddressPool": "p2", "backendHttpSettings": "s"}
    ]
  }],
  "requestRoutingRules": [
    {"name": "r1", "ruleType": "PathBasedRouting", "httpListener": "basic", "urlPathMap": "map"},
    {"name": "r2", "httpListener": "siteA", "backendAddressPool": "p1", "backendHttpSettings": "s"},
    {"name": "r3", "httpListener": "siteWild", "backendAddressPool": "p2", "backendHttpSettings": "s"},
    {"name": "r4", "httpListener": "siteDeep", "backendAddressPool": "p3", "backendHttpSettings": "s"},
    {"name": "r5", "httpListener": "siteAny", "backendAddressPool": "p3", "backendHttpSettings": "s"}
  ]
}"#;

fn table() -> RouteTable {
    RouteTable::build(&from_str(CONFIG, Format::Json).unwrap())
}

#[test]
fn longest_prefix_wins_and_exact_beats_prefix() {
    let t = table();
    let l = t.listener(8080, Some("anything")).unwrap();
    let r = l.route("/chat/room/7");
    assert_eq!(r.path_rule, Some("chatRoom"));
    assert_eq!(r.upstream.pool, "p3");
    assert_eq!(l.route("/chat/x").path_rule, Some("chat"));
    assert_eq!(l.route("/api").path_rule, Some("api"));
    assert_eq!(l.route("/ApI").path_rule, Some("api"), "case-insensitive");
    assert_eq!(l.route("/api/v2").path_rule, Some("apiAll"));
    assert_eq!(l.route("/chat").path_rule, Some("apiAll"));
}

#[test]
fn unmatched_paths_use_the_default() {
    let mut config = from_str(CONFIG, Format::Json).unwrap();
    config.url_path_maps[0].path_rules.pop();
    let t = RouteTable::build(&config);
    let r = t.listener(8080, None).unwrap().route("/other");
    assert_eq!(r.path_rule, None);
    assert_eq!(r.upstream.pool, "p1");
    assert_eq!(r.rule, "r1");
}

#[test]
fn multi_site_listeners_are_chosen_by_host() {
    let t = table();
    assert_eq!(
        t.listener(8081, Some("a.example.com")).unwrap().name,
        "siteA"
    );
    assert_eq!(
        t.listener(8081, Some("A.Example.COM.")).unwrap().name,
        "siteA"
    );
    assert_eq!(
        t.listener(8081, Some("b.example.com")).unwrap().name,
        "siteWild"
    );
    assert_eq!(
        t.listener(8081, Some("x.deep.example.com")).unwrap().name,
        "siteDeep"
    );
    assert_eq!(
        t.listener(8081, Some("example.com")).unwrap().name,
        "siteAny"
    );
    assert_eq!(t.listener(8081, None).unwrap().name, "siteAny");
    assert!(t.listener(9999, None).is_none());
}

#[test]
fn a_wildcard_stands_for_one_label_only() {
    let t = table();
    for deep in ["a.b.example.com", "y.x.deep.example.com", ".example.com"] {
        assert_eq!(
            t.listener(8081, Some(deep)).unwrap().name,
            "siteAny",
            "{deep}"
        );
    }
    assert!(wildcard_matches(".example.com", "a.example.com"));
    assert!(!wildcard_matches(".example.com", "a.b.example.com"));
    assert!(!wildcard_matches(".example.com", "example.com"));
    assert!(!wildcard_matches(".example.com", "aexample.com"));
}

#[test]
fn upstreams_lists_each_pool_settings_pair_once() {
    let t = table();
    let pools: Vec<String> = t.upstreams().into_iter().map(|u| u.pool).collect();
    assert_eq!(pools, ["p1", "p2", "p3"]);
}
