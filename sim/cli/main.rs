//! The `paddock-sim` command: run, swarm, replay, shrink, canaries, bench.
//! This binary is the only place wall-clock time and threads appear (to
//! report speed and run seeds in parallel); each run is single-threaded.

mod cli;

/// A run allocates per event (frames, txns, trace lines, tree nodes) and
/// is allocator-bound under the system malloc; the shipped server uses
/// mimalloc for the same reason. Allocation order never reaches a trace.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cli::main());
}
