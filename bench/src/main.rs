//! Side-by-side benchmarks of `paddock` and Apache ZooKeeper.
fn main() {}
