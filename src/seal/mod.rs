//! Sealing: the SOPS v3 file format with age recipients, written and read.
