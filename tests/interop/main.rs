//! Interop with real peers (placeholder).
