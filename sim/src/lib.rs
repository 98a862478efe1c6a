//! Deterministic simulator of the real `paddock-core` (see the `paddock-sim` command).
