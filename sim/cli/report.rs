//! A swarm's reports: the JSON summary (`--json`), the JUnit XML file CI
//! systems display (`--junit`), and `combine`, which merges the JSON
//! reports of a sharded swarm's jobs into one.
//!
//! The JUnit file is written here rather than with a JUnit crate: it is
//! one fixed shape (a suite, a test case per failing seed, one for the
//! seeds that passed) and needs only XML escaping; the crates that write
//! it bring an XML writer, a date library and UUIDs into the simulator's
//! build. The test `swarm_ci` checks the file with a real JUnit parser.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Which of `count` jobs this is (1-based `index`): the job runs the
/// seeds `from + index - 1 + k * count`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Parses `I/N` with `1 <= I <= N`.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || format!("--shard takes I/N with 1 <= I <= N (like 2/4), not {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The `k`th seed of this shard of the range starting at `from`.
    pub fn seed(&self, from: u64, k: u64) -> u64 {
        from + (self.index - 1) + k * self.count
    }

    /// How many of the `seeds` seeds from `from` are this shard's.
    pub fn share(&self, seeds: u64) -> u64 {
        let first = self.index - 1;
        if seeds <= first {
            0
        } else {
            (seeds - first).div_ceil(self.count)
        }
    }
}

/// Seeds `first + k * stride` for `k < count`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub first: u64,
    pub stride: u64,
    pub count: u64,
}

impl Span {
    pub fn seeds(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.count).map(|k| self.first + k * self.stride)
    }
}

/// A failing seed's reduction.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ShrunkEntry {
    /// The one command that replays the reduced run.
    pub repro: String,
    /// The faults kept, one line each (plan index, time, fault).
    pub faults: Vec<String>,
    pub ops_max: Option<u64>,
    pub clients: Option<usize>,
    pub verdict: String,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct FailureEntry {
    pub seed: u64,
    /// safety, liveness or panic.
    pub verdict: String,
    pub message: String,
    pub summary: String,
    /// The one command that replays the run.
    pub repro: String,
    pub wall_s: f64,
    /// Absent when the swarm shrank no more failures (`--shrink`).
    pub shrunk: Option<ShrunkEntry>,
}

/// What `swarm --json` writes and `combine` reads and writes.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct SwarmReport {
    /// The range asked for: `seeds` seeds from `from` (open-ended when
    /// only `--minutes` bounds the swarm).
    pub from: u64,
    pub seeds: Option<u64>,
    pub minutes: Option<f64>,
    /// The shards this report covers (one for a swarm, all for `combine`).
    pub shards: Vec<Shard>,
    /// Replay flags every run shared (`--canary`, `--ops`, ...).
    pub flags: String,
    pub jobs: usize,
    /// Seeds run; `seeds_run` says which.
    pub ran: u64,
    pub seeds_run: Vec<Span>,
    /// Whether the time limit ended the swarm before its seed range did.
    pub timed_out: bool,
    pub failures: Vec<FailureEntry>,
    /// Runs per verdict (ok, safety, liveness, panic).
    pub verdicts: BTreeMap<String, u64>,
    pub sim_s: f64,
    /// The swarm's wall time (for `combine`, the shards' summed).
    pub wall_s: f64,
    /// Simulated seconds per wall second.
    pub speedup: f64,
    pub events: u64,
}

impl SwarmReport {
    /// Every seed run, with how often.
    pub fn coverage(&self) -> BTreeMap<u64, u32> {
        let mut seen = BTreeMap::new();
        for s in &self.seeds_run {
            for seed in s.seeds() {
                *seen.entry(seed).or_insert(0) += 1;
            }
        }
        seen
    }

    pub fn name(&self) -> String {
        let shards = if self.shards.len() == 1 && self.shards[0] != Shard::WHOLE {
            format!(" shard {}/{}", self.shards[0].index, self.shards[0].count)
        } else if self.shards.len() > 1 {
            format!(" ({} shards)", self.shards.len())
        } else {
            String::new()
        };
        format!("paddock-sim swarm{shards}{}", self.flags)
    }
}

/// Merges shard reports. Fails if a seed was run twice (overlapping
/// shards or a report given twice) or the reports ran different swarms.
pub fn combine(reports: &[SwarmReport]) -> Result<SwarmReport, String> {
    let first = reports.first().ok_or("no reports to combine")?;
    for r in reports {
        if r.flags != first.flags || r.from != first.from || r.seeds != first.seeds {
            return Err(format!(
                "reports of different swarms: from {} seeds {:?} flags '{}' vs from {} seeds {:?} flags '{}'",
                first.from, first.seeds, first.flags, r.from, r.seeds, r.flags
            ));
        }
    }
    let mut out = SwarmReport {
        shards: Vec::new(),
        jobs: 0,
        ran: 0,
        seeds_run: Vec::new(),
        timed_out: false,
        failures: Vec::new(),
        verdicts: BTreeMap::new(),
        sim_s: 0.0,
        wall_s: 0.0,
        speedup: 0.0,
        events: 0,
        ..first.clone()
    };
    for r in reports {
        out.shards.extend(r.shards.iter().copied());
        out.jobs += r.jobs;
        out.ran += r.ran;
        out.seeds_run.extend(r.seeds_run.iter().copied());
        out.timed_out |= r.timed_out;
        out.failures.extend(r.failures.iter().cloned());
        for (k, v) in &r.verdicts {
            *out.verdicts.entry(k.clone()).or_insert(0) += v;
        }
        out.sim_s += r.sim_s;
        out.wall_s += r.wall_s;
        out.events += r.events;
    }
    out.failures.sort_by_key(|f| f.seed);
    out.speedup = out.sim_s / out.wall_s.max(1e-9);
    let twice: Vec<u64> = out
        .coverage()
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(s, _)| s)
        .collect();
    if !twice.is_empty() {
        return Err(format!(
            "{} seeds were run more than once (overlapping shards?): {:?}",
            twice.len(),
            &twice[..twice.len().min(20)]
        ));
    }
    let shards: BTreeSet<(u64, u64)> = out.shards.iter().map(|s| (s.index, s.count)).collect();
    if shards.len() != out.shards.len() {
        return Err("a shard's report was given twice".into());
    }
    Ok(out)
}

/// The seeds a full set of shards should have covered and did not (the
/// range asked minus the seeds run), as a count and the first few.
pub fn missing(r: &SwarmReport) -> (u64, Vec<u64>) {
    let Some(n) = r.seeds else {
        return (0, Vec::new());
    };
    let seen = r.coverage();
    let gone: Vec<u64> = (r.from..r.from + n)
        .filter(|s| !seen.contains_key(s))
        .collect();
    (gone.len() as u64, gone.into_iter().take(20).collect())
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 allows tab, newline and carriage return among the
            // control characters, and nothing else below space.
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML file: one suite; a test case per failing seed (its
/// verdict, one-line repro and shrunk fault list) and one for the seeds
/// that passed.
pub fn junit(r: &SwarmReport) -> String {
    let name = xml_escape(&r.name());
    let passed = r.ran - r.failures.len() as u64;
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x += &format!(
        "<testsuites name=\"{name}\" tests=\"{}\" failures=\"{}\" errors=\"0\" time=\"{:.3}\">\n",
        r.failures.len() + 1,
        r.failures.len(),
        r.wall_s
    );
    x += &format!(
        "  <testsuite name=\"{name}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\">\n",
        r.failures.len() + 1,
        r.failures.len(),
        r.wall_s
    );
    x += "    <properties>\n";
    let spans: Vec<String> = r
        .seeds_run
        .iter()
        .map(|s| format!("{}+{}k (k<{})", s.first, s.stride, s.count))
        .collect();
    for (k, v) in [
        ("seeds run", r.ran.to_string()),
        ("seed spans", spans.join(", ")),
        ("sim seconds", format!("{:.1}", r.sim_s)),
        ("speed-up", format!("x{:.0}", r.speedup)),
        ("timed out", r.timed_out.to_string()),
    ] {
        x += &format!(
            "      <property name=\"{}\" value=\"{}\"/>\n",
            xml_escape(k),
            xml_escape(&v)
        );
    }
    x += "    </properties>\n";
    for f in &r.failures {
        x += &format!(
            "    <testcase classname=\"paddock-sim.swarm\" name=\"seed {}\" time=\"{:.3}\">\n",
            f.seed, f.wall_s
        );
        let first_line = f.message.lines().next().unwrap_or("");
        let mut body = format!("{}\nreplay: {}\n", f.summary, f.repro);
        match &f.shrunk {
            Some(s) => {
                body += &format!("shrunk: {}\nshrunk faults ({}):\n", s.repro, s.faults.len());
                for l in &s.faults {
                    body += &format!("  {l}\n");
                }
                body += &format!("shrunk verdict: {}\n", s.verdict);
            }
            None => body += "not shrunk (see --shrink)\n",
        }
        body += &format!("verdict:\n{}\n", f.message);
        x += &format!(
            "      <failure type=\"{}\" message=\"{}\">{}</failure>\n",
            xml_escape(&f.verdict),
            xml_escape(&format!("{}: {first_line}", f.verdict)),
            xml_escape(&body)
        );
        x += "    </testcase>\n";
    }
    x += &format!(
        "    <testcase classname=\"paddock-sim.swarm\" name=\"{passed} seeds passed\" time=\"{:.3}\"/>\n",
        r.wall_s
    );
    x += "  </testsuite>\n</testsuites>\n";
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_a_range_exactly_once() {
        for seeds in [0u64, 1, 7, 30, 101] {
            for count in 1..=5u64 {
                let mut seen = BTreeMap::new();
                let mut shares = 0;
                for index in 1..=count {
                    let s = Shard { index, count };
                    shares += s.share(seeds);
                    for k in 0..s.share(seeds) {
                        *seen.entry(s.seed(10, k)).or_insert(0) += 1;
                    }
                }
                assert_eq!(shares, seeds, "{seeds} seeds in {count} shards");
                let want: BTreeMap<u64, i32> = (10..10 + seeds).map(|s| (s, 1)).collect();
                assert_eq!(seen, want, "{seeds} seeds in {count} shards");
            }
        }
    }

    #[test]
    fn shard_parse_rejects_nonsense() {
        assert_eq!(Shard::parse("2/4"), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "4", "a/b", "1/-2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escapes_what_xml_needs() {
        assert_eq!(
            xml_escape("a<b & 'c' \"d\"\u{1}\n"),
            "a&lt;b &amp; &apos;c&apos; &quot;d&quot;\\u{1}\n"
        );
    }
}
