//! Connecting to `ws://` and `wss://` servers (placeholder; the client issue fills this in).
