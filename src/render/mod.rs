//! Rendering (pure): an Environment's side-repo folder from its Components and credentials.

/// One file of the side repository, path relative to the repository root.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: String,
    pub contents: Vec<u8>,
}

impl std::fmt::Debug for RenderedFile {
    // Contents are sealed, but never print them anyway: a debug line must not
    // be able to carry a secret even if a caller builds a plaintext file.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderedFile")
            .field("path", &self.path)
            .field("bytes", &self.contents.len())
            .finish()
    }
}
