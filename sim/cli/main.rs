//! The `paddock-sim` command: run, swarm, replay, shrink, canaries, bench.
//! This binary is the only place wall-clock time and threads appear (to
//! report speed and run seeds in parallel); each run is single-threaded.

mod cli;
mod html;
mod report;
mod shrink;
mod swarm;

use libmimalloc_sys as ffi;
use std::alloc::{GlobalAlloc, Layout};

/// A run allocates per event (frames, txns, trace lines, tree nodes) and
/// is allocator-bound under the system malloc, so the simulator uses
/// mimalloc, as the shipped server does. Allocation order never reaches a
/// trace.
///
/// `mimalloc::MiMalloc` sends every request through mimalloc's aligned
/// entry point, which costs about three times the plain one (callgrind: 53
/// instructions per allocation). Nearly every Rust allocation asks for an
/// alignment that mimalloc's plain `mi_malloc` already guarantees (16
/// bytes, or the size itself below that), so those take the plain path.
struct Alloc;

/// The alignment `mi_malloc` guarantees (mimalloc's `MI_MAX_ALIGN_SIZE`).
const MI_MAX_ALIGN: usize = 16;

/// Whether `mi_malloc`'s own alignment covers `align` for a block of
/// `size` bytes.
fn plain(align: usize, size: usize) -> bool {
    align <= MI_MAX_ALIGN && align <= size
}

// SAFETY: every path hands the request to mimalloc, which returns memory
// of at least the size and alignment asked (the plain path only when its
// guaranteed alignment covers the request), and frees or resizes only
// pointers it returned.
unsafe impl GlobalAlloc for Alloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align(), layout.size()) {
            ffi::mi_malloc(layout.size()).cast()
        } else {
            ffi::mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain(layout.align(), layout.size()) {
            ffi::mi_zalloc(layout.size()).cast()
        } else {
            ffi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        ffi::mi_free(ptr.cast());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if plain(layout.align(), new_size) {
            ffi::mi_realloc(ptr.cast(), new_size).cast()
        } else {
            ffi::mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
        }
    }
}

#[global_allocator]
static GLOBAL: Alloc = Alloc;

/// mimalloc's `mi_option_purge_delay` (its header's option 15).
const MI_OPTION_PURGE_DELAY: ffi::mi_option_t = 15;

fn main() {
    // Never hand freed pages back to the OS: a run's memory is reused by
    // the next seed, and faulting it back in (the kernel zeroing each
    // page) took about a tenth of a bench's time. The process is short
    // lived, so its footprint is its peak either way.
    // SAFETY: sets a plain integer option; mimalloc reads it when it
    // next considers purging, and any value is valid (-1 means never).
    unsafe { ffi::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    std::process::exit(cli::main());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain path must still honour every alignment it takes on.
    #[test]
    fn plain_allocations_are_aligned_as_asked() {
        let mut live = Vec::new();
        for size in 1..=600usize {
            for align in [1usize, 2, 4, 8, 16, 32, 64] {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                // SAFETY: a non-zero size; freed below with its layout.
                let p = unsafe { GLOBAL.alloc(layout) };
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "size {size} align {align}");
                live.push((p, layout));
            }
        }
        for (p, layout) in live {
            // SAFETY: allocated above with this layout.
            unsafe { GLOBAL.dealloc(p, layout) };
        }
    }
}
