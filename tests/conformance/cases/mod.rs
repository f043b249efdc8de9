//! The case tables, one module per section, written from RFC 6455. Most cases are role-agnostic
//! scripts run against both a server and a client under test; some only make sense for one
//! role (the opening handshake, which end must mask).

pub mod client_handshake;
pub mod close;
pub mod fragmentation;
pub mod framing;
pub mod handshake;
pub mod limits;
pub mod masking;
pub mod opcodes;
pub mod pings;
pub mod reserved;
pub mod utf8;

use sockway_tests::frame::Frame;

use crate::script::{close_normally, Step};

/// The message size limit of every implementation under test (the in-process server, the
/// `sockway echo` binary and the client), so the limits cases can probe it.
pub const LIMIT: usize = 256 * 1024;

/// Which roles a case runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roles {
    /// Against servers and clients.
    Both,
    /// Against servers only.
    Server,
    /// Against clients only.
    Client,
}

/// What a case does.
#[derive(Debug, Clone)]
pub enum Body {
    /// A script over an established connection.
    Script(Vec<Step>),
    /// An opening handshake check (server role).
    Handshake(handshake::Check),
    /// A handshake response a client must accept or refuse (client role).
    ClientHandshake(client_handshake::Response),
}

/// One conformance case.
#[derive(Debug, Clone)]
pub struct Case {
    /// A stable dotted identifier, starting with the section.
    pub id: String,
    /// The section (the first part of the id).
    pub section: &'static str,
    /// What the case checks, in words.
    pub description: String,
    /// Which roles it runs in.
    pub roles: Roles,
    /// Frames the test end sends in the same write as its handshake message (the client's
    /// request or the server's 101 response), before the script starts.
    pub with_handshake: Vec<Frame>,
    /// The steps or check.
    pub body: Body,
}

impl Case {
    /// A script case for both roles; `id` is relative to the section.
    pub fn new(section: &'static str, id: &str, description: &str, steps: Vec<Step>) -> Self {
        Self {
            id: format!("{section}.{id}"),
            section,
            description: description.to_owned(),
            roles: Roles::Both,
            with_handshake: Vec::new(),
            body: Body::Script(steps),
        }
    }

    /// Restricts the case to the server role.
    pub fn server_only(mut self) -> Self {
        self.roles = Roles::Server;
        self
    }

    /// Restricts the case to the client role.
    pub fn client_only(mut self) -> Self {
        self.roles = Roles::Client;
        self
    }

    /// Sends `frames` together with the handshake.
    pub fn with_handshake(mut self, frames: Vec<Frame>) -> Self {
        self.with_handshake = frames;
        self
    }
}

/// `steps` followed by the orderly close.
pub fn then_close(mut steps: Vec<Step>) -> Vec<Step> {
    steps.extend(close_normally());
    steps
}

/// Every case, in section order.
pub fn all() -> Vec<Case> {
    let mut cases = Vec::new();
    cases.extend(framing::cases());
    cases.extend(pings::cases());
    cases.extend(reserved::cases());
    cases.extend(opcodes::cases());
    cases.extend(fragmentation::cases());
    cases.extend(utf8::cases());
    cases.extend(close::cases());
    cases.extend(limits::cases());
    cases.extend(masking::cases());
    cases.extend(handshake::cases());
    cases.extend(client_handshake::cases());
    cases
}
