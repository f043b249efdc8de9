#![no_main]
//! Arbitrary bytes from a server into the client role's state machine.
use libfuzzer_sys::fuzz_target;
use sockway_proto::{Connection, Role};

fuzz_target!(|data: &[u8]| sockway_fuzz::drive(data, |config| Connection::new(Role::Client, config)));
