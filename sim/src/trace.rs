//! The run's trace: one line per event, hashed as it is written (FNV-1a),
//! so two runs of one seed can be compared by hash alone. Lines are kept
//! in full only when asked (`--trace`, `replay`); otherwise only the last
//! `TAIL_MAX` lines, to print what led up to a failure.

use crate::rng::{fnv1a, FNV_OFFSET};
use std::collections::VecDeque;

pub const TAIL_MAX: usize = 40;

#[derive(Debug)]
pub struct Trace {
    hash: u64,
    lines: u64,
    full: Option<Vec<String>>,
    tail: VecDeque<String>,
}

impl Trace {
    pub fn new(keep_full: bool) -> Trace {
        Trace {
            hash: FNV_OFFSET,
            lines: 0,
            full: keep_full.then(Vec::new),
            tail: VecDeque::with_capacity(TAIL_MAX),
        }
    }

    /// Records one line at simulated time `ns`.
    pub fn line(&mut self, ns: u64, text: &str) {
        let l = format!(
            "{:>6}.{:06} {text}",
            ns / 1_000_000_000,
            (ns / 1_000) % 1_000_000
        );
        self.hash = fnv1a(l.as_bytes(), self.hash);
        self.hash = fnv1a(b"\n", self.hash);
        self.lines += 1;
        if self.tail.len() == TAIL_MAX {
            self.tail.pop_front();
        }
        self.tail.push_back(l.clone());
        if let Some(f) = &mut self.full {
            f.push(l);
        }
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub fn lines(&self) -> u64 {
        self.lines
    }

    pub fn tail(&self) -> impl Iterator<Item = &String> {
        self.tail.iter()
    }

    pub fn full(&self) -> Option<&[String]> {
        self.full.as_deref()
    }
}
