//! The simulator's named timing profiles, in nanoseconds of simulated
//! time: latencies, think time, reconnect back-off and the shape of each
//! fault level. One place to read (and change) what a run's timing is.
//! A `Latency` draws from `SimRng::latency` (mostly near `typical`, a
//! long tail to `max`); a `Window` draws uniformly.

use crate::rng::SimRng;

/// One millisecond.
pub const MS: u64 = 1_000_000;

#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub min: u64,
    pub typical: u64,
    pub max: u64,
}

impl Latency {
    pub fn draw(&self, rng: &mut SimRng) -> u64 {
        rng.latency(self.min, self.typical, self.max)
    }

    /// The profile of fault level `level`: `typical` and `max` grow with
    /// it, `min` stays.
    pub fn at_level(&self, level: u64) -> Latency {
        Latency {
            min: self.min,
            typical: self.typical * level,
            max: self.max * level,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub min: u64,
    pub max: u64,
}

impl Window {
    pub fn draw(&self, rng: &mut SimRng) -> u64 {
        rng.range(self.min, self.max)
    }
}

// ----- disk ------------------------------------------------------------

/// One storage operation (write and fsync) on a healthy disk.
pub const DISK_OP: Latency = Latency {
    min: MS / 10,
    typical: MS,
    max: 4 * MS,
};
/// A slow disk, per level of `FaultKind::SlowDisk`.
pub const DISK_OP_SLOW_PER_LEVEL: Latency = Latency {
    min: MS / 2,
    typical: 10 * MS,
    max: 200 * MS,
};
/// Writing a snapshot file off the log's queue.
pub const SNAPSHOT_WRITE: Window = Window {
    min: MS,
    max: 30 * MS,
};

/// A server that stopped (its disk refused an operation) or refused to
/// start is started again after this (a supervisor's restart delay).
pub const RESTART_AFTER_STOP: Window = Window {
    min: 100 * MS,
    max: 2_000 * MS,
};

// ----- peer links ------------------------------------------------------

/// A (re)started server's links come up after this.
pub const PEER_DIAL: Window = Window {
    min: MS,
    max: 20 * MS,
};
/// A link reset (fault or protocol error) is re-dialled after this.
pub const PEER_REDIAL: Window = Window {
    min: 20 * MS,
    max: 200 * MS,
};
/// A link that cannot come up yet (a side paused) is retried after this.
pub const PEER_RETRY_NS: u64 = 50 * MS;
/// Peer latency per level of `FaultKind::PeerLatency`: typical and max.
pub const PEER_LATENCY_TYPICAL_PER_LEVEL_NS: u64 = 5 * MS;
pub const PEER_LATENCY_MAX_PER_LEVEL_NS: u64 = 100 * MS;

// ----- clients ---------------------------------------------------------

/// A client frame's trip between client and server.
pub const CLIENT_NET: Latency = Latency {
    min: MS / 20,
    typical: MS / 2,
    max: 3 * MS,
};
/// Per level of `FaultKind::ClientLatency`.
pub const CLIENT_NET_SLOW_PER_LEVEL: Latency = Latency {
    min: MS / 10,
    typical: 10 * MS,
    max: 300 * MS,
};
/// Between a client's bursts of requests.
pub const CLIENT_THINK: Latency = Latency {
    min: MS,
    typical: 20 * MS,
    max: 500 * MS,
};
/// The chance a client sends one more request in the same burst.
pub const CLIENT_BURST_MORE: f64 = 0.3;
/// A client reconnects after its connection closed.
pub const CLIENT_RECONNECT: Window = Window {
    min: 5 * MS,
    max: 200 * MS,
};
/// A client reconnects after it dropped its own connection.
pub const CLIENT_RECONNECT_AFTER_DROP: Window = Window {
    min: 5 * MS,
    max: 300 * MS,
};
/// A client retries a server that is down or paused.
pub const CLIENT_RETRY_UNAVAILABLE: Window = Window {
    min: 20 * MS,
    max: 300 * MS,
};
/// A server notices a client's hang-up.
pub const CLIENT_HANGUP_SEEN: Window = Window {
    min: MS / 10,
    max: 5 * MS,
};
/// A client sees a close after the last frame queued to it.
pub const CLIENT_CLOSE_SEEN_NS: u64 = MS / 10;
/// A client sees its server crash after the last frame queued to it.
pub const CLIENT_CRASH_SEEN_NS: u64 = MS;

// ----- clocks ----------------------------------------------------------

/// A node's clock starts up to this far from the simulation's.
pub const CLOCK_OFFSET_MAX_NS: u64 = 3_600_000 * MS;
/// Clock drift per level of `FaultKind::ClockSkew`, in parts per million
/// (clamped to `clock::DRIFT_PPM_MAX`).
pub const CLOCK_DRIFT_PPM_PER_LEVEL: i64 = 16_000;
