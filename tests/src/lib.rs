//! Shared helpers for the cross-crate test suites (placeholder; the conformance suite fills this in).
