//! The Quay emulator: Quay's endpoints, quirks and a registry token endpoint, with fault injection.
