//! The `fastreq` command line (in progress).
fn main() {}
