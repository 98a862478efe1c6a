//! `paddock takeover-check --zookeeper H:P,... --paddock H:P,... [--min-zxid Z]`:
//! the fence and check steps of the takeover (docs/OPERATIONS.md,
//! "Takeover"), asked over four-letter words on the client ports.
//!
//! - Fence: no listed ZooKeeper server may still serve (`srvr` answers
//!   `Mode: leader`, `follower` or `standalone`); one that does not answer,
//!   or answers that it is not serving, is fenced.
//! - Check: every listed paddock follower answers `mntr` (it must be in
//!   `4lw.commands.whitelist`) with the same last zxid, that zxid durable
//!   in its log (`zk_persisted_zxid`), and at least `--min-zxid` (the last
//!   zxid the operator saw ZooKeeper's leader report, if given).
//!
//! Exit 0 and the switch step to take when both hold; otherwise exit 1
//! with what does not hold. It changes nothing: the switch (stopping
//! ZooKeeper, restarting the paddock servers without the migration key)
//! is the operator's.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const USAGE: &str =
    "usage: paddock takeover-check --zookeeper H:P[,H:P...] --paddock H:P[,H:P...] [--min-zxid ZXID]";

pub fn main(args: &[std::ffi::OsString]) -> Result<()> {
    let mut zookeeper = Vec::new();
    let mut paddock = Vec::new();
    let mut min_zxid = 0u64;
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{a} needs a value; {USAGE}"))
        };
        match a.as_str() {
            "--zookeeper" => zookeeper = list(&value()?),
            "--paddock" => paddock = list(&value()?),
            "--min-zxid" => min_zxid = parse_zxid(&value()?)?,
            other => bail!("unknown argument {other:?}; {USAGE}"),
        }
    }
    if zookeeper.is_empty() || paddock.is_empty() {
        bail!("{USAGE}");
    }
    let zxid = check(&zookeeper, &paddock, min_zxid)?;
    println!(
        "takeover check passed: no ZooKeeper server serves; the {} paddock servers hold zxid {zxid:#x}, durable.\n\
         Now stop every ZooKeeper server, remove migration.followZooKeeper from each paddock \
         server's zoo.cfg and restart them.",
        paddock.len()
    );
    Ok(())
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn parse_zxid(v: &str) -> Result<u64> {
    let r = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    r.with_context(|| format!("{v:?} is not a zxid (decimal or 0x-hex)"))
}

/// The fence and check steps; the common zxid when both hold.
pub fn check(zookeeper: &[String], paddock: &[String], min_zxid: u64) -> Result<u64> {
    let mut serving = Vec::new();
    for a in zookeeper {
        if let Ok(text) = four_letter(a, "srvr") {
            let mode = text
                .lines()
                .find_map(|l| l.strip_prefix("Mode: "))
                .unwrap_or("");
            if matches!(mode.trim(), "leader" | "follower" | "standalone") {
                serving.push(format!("{a} ({})", mode.trim()));
            }
        }
    }
    if !serving.is_empty() {
        bail!(
            "refusing: ZooKeeper still serves at {}. Fence it first: stop its followers (all but \
             the leader) and wait for the leader to stop serving",
            serving.join(", ")
        );
    }
    let mut held = Vec::new();
    for a in paddock {
        let text = four_letter(a, "mntr")
            .with_context(|| format!("refusing: paddock server {a} does not answer mntr"))?;
        let field = |name: &str| -> Result<u64> {
            let v = text
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('\t'))
                .with_context(|| {
                    format!(
                        "refusing: paddock server {a} reports no {name} (is mntr in \
                         4lw.commands.whitelist?)"
                    )
                })?;
            parse_zxid(v.trim())
        };
        held.push((
            a,
            field("zk_last_proposal_zxid")?,
            field("zk_persisted_zxid")?,
        ));
    }
    let (_, first, _) = held[0];
    for (a, last, durable) in &held {
        if last != &first {
            bail!(
                "refusing: the paddock servers hold different zxids ({}); wait for them to catch up",
                held.iter()
                    .map(|(a, l, _)| format!("{a} {l:#x}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if durable < last {
            bail!("refusing: paddock server {a} has {last:#x} but only {durable:#x} on disk; wait");
        }
    }
    if first < min_zxid {
        bail!(
            "refusing: the paddock servers hold {first:#x}, below ZooKeeper's last reported \
             {min_zxid:#x}: something ZooKeeper committed is missing"
        );
    }
    Ok(first)
}

fn four_letter(addr: &str, word: &str) -> Result<String> {
    let a = addr
        .to_socket_addrs()?
        .next()
        .with_context(|| format!("{addr} resolves to nothing"))?;
    let mut s = TcpStream::connect_timeout(&a, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(word.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}
