//! Child processes a test starts, stopped when the test ends — even by a
//! panic — so none outlives it.

use std::process::Child;

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
