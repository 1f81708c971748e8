//! Private-source detection: an anonymous git ls-remote of a Component's source URL.
