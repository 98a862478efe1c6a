//! The `paddock-sim` command: run, swarm, replay, shrink, canaries, bench.
//! This binary is the only place wall-clock time and threads appear (to
//! report speed and run seeds in parallel); each run is single-threaded.

mod cli;

fn main() {
    std::process::exit(cli::main());
}
