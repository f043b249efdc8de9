//! Placeholder; the server issue fills this in.
fn main() {}
