//! Shared helpers for sockway's cross-crate suites (`conformance`, `interop`, `properties`):
//! hand-written RFC 6455 frames and handshakes that do not rely on the code under test, a raw
//! peer to drive implementations with arbitrary bytes, an in-process echo server built on
//! `sockway::server`, a client connector, and child-process and path utilities.

pub mod client;
pub mod echo_server;
pub mod frame;
pub mod http1;
pub mod payload;
pub mod peer;
pub mod process;
