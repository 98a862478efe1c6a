//! Black-box tests of the real `paddock` binary live in `tests/`.
