//! Reliability under load, faults and hostile input, over loopback: sockway keeps working,
//! loses no accepted message, never panics or hangs, and its memory stays bounded.
//!
//! - [`soak`]: many connections echoing sequence-numbered messages (text and binary, 1 B to
//!   64 KiB, some fragmented, permessage-deflate on a subset) for a bounded time: nothing lost,
//!   duplicated or reordered, and the process's RSS at the end within a margin of its RSS
//!   after warm-up.
//! - [`memory`]: a peer that never reads (the send blocks, memory stays bounded, a send
//!   timeout lets the handler close), a ping flood from a peer that never reads (pongs are
//!   coalesced, receiving goes on) and a compression bomb (close 1009, memory bounded).
//! - [`liveness`]: a peer that vanishes without a FIN (keep-alive timeout) and half-closed TCP
//!   connections, with and without a close frame.
//! - [`tls_garbage`]: plain HTTP and random bytes on a TLS port.
//! - [`burst`]: a burst of connection attempts against a runner limited to 100 connections.
//! - [`smuggling`]: malformed HTTP and request smuggling attempts at the gateway, judged by
//!   what a recording backend receives.
//!
//! Every test bounds each of its waits and stops by itself. The tests that measure the
//! process's memory, or load it heavily, run alone ([`support::exclusive`]); the others share.
//! The defaults fit a CI budget (the whole target in well under 60 s on 2 cores in debug);
//! bigger runs are behind environment variables: `SOCKWAY_SOAK_SECS` (default 10),
//! `SOCKWAY_SOAK_CONNECTIONS` (default 500), `SOCKWAY_BURST_ATTEMPTS` (default 2000).

mod burst;
mod liveness;
mod memory;
mod recorder;
mod smuggling;
mod soak;
mod support;
mod tls_garbage;
