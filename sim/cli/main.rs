//! The `paddock-sim` command: run, swarm, replay, shrink, canaries, bench.
//! This binary is the only place wall-clock time and threads appear (to
//! report speed and run seeds in parallel); each run is single-threaded.

mod cli;

/// A run allocates per event (frames, txns, trace lines, tree nodes) and
/// is allocator-bound under the system malloc; the shipped server uses
/// mimalloc for the same reason. Allocation order never reaches a trace.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its header's option 15).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() {
    // Never hand freed pages back to the OS: a run's memory is reused by
    // the next seed, and faulting it back in (the kernel zeroing each
    // page) took about a tenth of a bench's time. The process is short
    // lived, so its footprint is its peak either way.
    // SAFETY: sets a plain integer option; mimalloc reads it when it
    // next considers purging, and any value is valid (-1 means never).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    std::process::exit(cli::main());
}
