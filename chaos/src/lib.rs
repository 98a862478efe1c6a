//! Fault tests of real `paddock` ensembles, checked by client histories.
//!
//! - [`cluster`]: N real `paddock` processes on loopback from generated
//!   zoo.cfg files, with kill -9, restart, SIGSTOP/SIGCONT and a tmpfs
//!   dataDir for a full disk; every process is killed (by PID) and every
//!   mount unmounted on drop, also on panic.
//! - [`proxy`]: the fault-injecting TCP proxy on the peer links
//!   (partitions: isolate one, split halves, one-way).
//! - [`slowdisk`]: an `LD_PRELOAD` shim, compiled at run time, that delays
//!   `fsync`/`fdatasync` in a chosen server while it runs.
//! - [`client`]: a raw jute client over std TCP with bounded timeouts.
//! - [`history`]: the recorded invocations and completions, and the
//!   checker (linearizable writes by zxid, monotonic sessions, no lost or
//!   invented writes, ephemerals gone with their session).
//! - [`fault`]: the fault kinds, carrying them out and undoing them, the
//!   time each held, and the slow-disk rule.
//! - [`workload`]: concurrent clients and the fault driver; the bounded
//!   test run and the soak share it.

pub mod client;
pub mod cluster;
pub mod fault;
pub mod history;
pub mod proxy;
pub mod slowdisk;
pub mod workload;
