//! Rendering (pure): an Environment's side-repo folder from its Components and credentials.
