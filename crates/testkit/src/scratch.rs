//! Scratch folders, removed when dropped: one per server, test or benchmark.

use std::io;

/// A new folder under the system's temporary directory, named `prefix…`.
pub fn dir(prefix: &str) -> io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix(prefix).tempdir()
}
