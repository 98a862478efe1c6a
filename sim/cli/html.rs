//! `run --html FILE` and `shrink --html FILE`: one self-contained HTML
//! page (no network) with the run's timeline: a lane per server and per
//! client, peer messages as arrows from send to delivery, faults, crashes,
//! disk damage and clock jumps as marks, each server's role and epoch as
//! bands, client operations as bars, and the checker's verdict pinned
//! where it fired. Built from the run's trace lines, its history and the
//! world's timeline (`paddock_sim::timeline`). The page's script
//! (timeline.js) draws SVG; zoom, pan, filters and details are client side.

use paddock_sim::history::Outcome;
use paddock_sim::scenario::{Overrides, Scenario};
use paddock_sim::world::World;
use paddock_sim::{run_world, Report, Verdict};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Runs `seed` under `o` with everything the picture needs recorded, and
/// writes the page to `path`. Returns the run's report.
pub fn run_to_html(seed: u64, o: &Overrides, path: &str) -> Result<Report, String> {
    let mut w = World::new(Scenario::draw(seed, o), true);
    w.timeline = Some(Default::default());
    let (r, w) = run_world(w, o);
    std::fs::write(path, page(&r, &w)).map_err(|e| format!("cannot write {path}: {e}"))?;
    Ok(r)
}

/// A trace line's time (ns) and text.
fn parse_line(l: &str) -> Option<(u64, &str)> {
    let l = l.trim_start();
    let (ts, text) = l.split_once(' ')?;
    let (s, us) = ts.split_once('.')?;
    let t = s.parse::<u64>().ok()? * 1_000_000_000 + us.parse::<u64>().ok()? * 1_000;
    Some((t, text))
}

/// The number after `key` in `text` (like `server: 3`).
fn num_after(text: &str, key: &str) -> Option<u64> {
    let i = text.find(key)? + key.len();
    let digits: String = text[i..]
        .chars()
        .skip_while(|c| *c == ' ')
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Marks from trace lines: (lane, kind) pairs for one line.
fn classify(text: &str) -> Vec<(String, &'static str)> {
    let lane_s = |n: u64| format!("s{n}");
    if let Some(rest) = text.strip_prefix("fault #") {
        let kind = if rest.contains("Crash") {
            "crash"
        } else if rest.contains("Split") || rest.contains("OneWay") || rest.contains("LinkReset") {
            "partition"
        } else if rest.contains("Corrupt") {
            "disk"
        } else if rest.contains("ClockJump") {
            "clock"
        } else if rest.contains("Pause") {
            "pause"
        } else {
            "fault"
        };
        if let Some(c) = num_after(rest, "client:") {
            return vec![(format!("c{c}"), "fault")];
        }
        if let Some(i) = rest.find("side: [") {
            let inner = &rest[i + 7..];
            let inner = &inner[..inner.find(']').unwrap_or(0)];
            return inner
                .split(',')
                .filter_map(|x| x.trim().parse().ok())
                .map(|n| (lane_s(n), kind))
                .collect();
        }
        for key in ["server:", "from:", "a:"] {
            if let Some(n) = num_after(rest, key) {
                let mut v = vec![(lane_s(n), kind)];
                for k2 in ["to:", "b:"] {
                    if let Some(m) = num_after(rest, k2) {
                        v.push((lane_s(m), kind));
                    }
                }
                return v;
            }
        }
        return vec![("all".into(), kind)];
    }
    if text.contains("VIOLATION") {
        return vec![("all".into(), "violation")];
    }
    if let Some(n) = text.strip_prefix("server ").and_then(|r| num_after(r, "")) {
        let kind = if text.contains(" crashes") {
            "crash"
        } else if text.contains(" starts at") {
            "restart"
        } else if text.contains("corrupt") || text.contains("recovery") {
            "disk"
        } else if text.contains("resumes") || text.contains("pause") {
            "pause"
        } else if text.contains("closes conn") || text.contains("drops link") {
            "conn"
        } else {
            "note"
        };
        return vec![(lane_s(n), kind)];
    }
    if let Some(n) = text.strip_prefix("client ").and_then(|r| num_after(r, "")) {
        return vec![(format!("c{n}"), "conn")];
    }
    vec![("all".into(), "note")]
}

fn verdict_parts(v: &Verdict) -> (&'static str, String) {
    match v {
        Verdict::Ok => ("ok", String::new()),
        Verdict::Safety(w) => ("safety violation", w.clone()),
        Verdict::Liveness(w) => ("liveness failure", w.clone()),
        Verdict::Panic(w) => ("panic", w.clone()),
    }
}

/// The page's data: everything the script draws.
pub fn data(r: &Report, w: &World) -> Value {
    let end = r.sim_ns.max(1);
    let lines: Vec<(u64, &str)> = r
        .full_trace
        .iter()
        .flatten()
        .filter_map(|l| parse_line(l))
        .collect();
    let mut lanes = Vec::new();
    for (id, s) in &w.servers {
        let role = if w.scn.servers().contains(id) && *id > w.scn.voters {
            "observer"
        } else {
            "voter"
        };
        let _ = s;
        lanes.push(json!({"id": format!("s{id}"), "label": format!("server {id}"), "kind": "server", "note": role}));
    }
    for c in &w.clients {
        lanes.push(json!({"id": format!("c{}", c.id), "label": format!("client {}", c.id), "kind": "client", "note": ""}));
    }
    let mut marks = Vec::new();
    let mut violation_t = None;
    // Per server: (time, role, epochs, detail) from role changes and crashes.
    let mut roles: BTreeMap<u64, Vec<(u64, String, u32, String)>> = BTreeMap::new();
    for (t, text) in &lines {
        for (lane, kind) in classify(text) {
            if kind == "violation" && violation_t.is_none() {
                violation_t = Some(*t);
                continue;
            }
            if kind == "crash" && !text.starts_with("fault") {
                if let Some(n) = lane.strip_prefix('s').and_then(|x| x.parse().ok()) {
                    roles
                        .entry(n)
                        .or_default()
                        .push((*t, "down".into(), 0, text.to_string()));
                }
            }
            marks.push(json!({"lane": lane, "t": t, "k": kind, "d": text}));
        }
    }
    let mut msgs = Vec::new();
    if let Some(tl) = &w.timeline {
        for rc in &tl.roles {
            roles.entry(rc.server).or_default().push((
                rc.at_ns,
                rc.role.to_string(),
                rc.epochs.1,
                format!(
                    "{} (accepted epoch {}, current epoch {}): {}",
                    rc.role, rc.epochs.0, rc.epochs.1, rc.detail
                ),
            ));
        }
        for m in &tl.msgs {
            let head = format!("{} server {} -> server {}", m.kind, m.from, m.to);
            if m.due_ns.is_empty() {
                msgs.push(json!({"f": format!("s{}", m.from), "to": format!("s{}", m.to), "t0": m.sent_ns, "t1": null, "k": m.kind, "d": format!("{head} (dropped)\n{}", m.detail)}));
            }
            for due in &m.due_ns {
                msgs.push(json!({"f": format!("s{}", m.from), "to": format!("s{}", m.to), "t0": m.sent_ns, "t1": due, "k": m.kind, "d": format!("{head}\n{}", m.detail)}));
            }
        }
    }
    let mut bands = Vec::new();
    for (server, mut list) in roles {
        list.sort_by_key(|x| x.0);
        for (i, (t, role, epoch, detail)) in list.iter().enumerate() {
            let t1 = list.get(i + 1).map_or(end, |n| n.0);
            if t1 > *t || i + 1 == list.len() {
                bands.push(json!({"lane": format!("s{server}"), "t0": t, "t1": t1, "role": role, "epoch": epoch, "d": detail}));
            }
        }
    }
    let mut ops = Vec::new();
    for op in &w.hist.ops {
        let (t1, ok, out) = match &op.outcome {
            Outcome::Pending => (end, "pending", "pending".to_string()),
            Outcome::Lost => (
                end.min(op.sent_ns + 1_000_000),
                "lost",
                "lost (connection dropped)".into(),
            ),
            Outcome::Reply {
                zxid,
                err,
                body,
                at_ns,
            } => (
                *at_ns,
                if *err == 0 { "ok" } else { "err" },
                format!("reply zxid {zxid:#x} err {err}: {body:?}"),
            ),
        };
        let req = format!("{:?}", op.request);
        let label: String = req.chars().take_while(|c| c.is_alphanumeric()).collect();
        let d = format!(
            "client {} session {:#x} conn {} xid {}\nrequest {req}\n{out}",
            op.client, op.session, op.conn, op.xid
        );
        ops.push(json!({"lane": format!("c{}", op.client), "t0": op.sent_ns, "t1": t1, "k": label, "ok": ok, "d": clip(&d)}));
    }
    let (kind, text) = verdict_parts(&r.verdict);
    let violation = (!r.verdict.is_ok()).then(|| {
        json!({"t": violation_t.unwrap_or(end), "kind": kind, "d": text,
               "at_end": violation_t.is_none()})
    });
    json!({
        "title": format!("seed {}{}", r.seed, r.overrides.flags()),
        "summary": r.summary(),
        "describe": r.describe,
        "replay": r.replay_command(),
        "end": end,
        "lanes": lanes,
        "bands": bands,
        "marks": marks,
        "msgs": msgs,
        "ops": ops,
        "violation": violation,
    })
}

fn clip(s: &str) -> String {
    if s.len() <= 800 {
        return s.to_string();
    }
    let mut end = 800;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} ...", &s[..end])
}

/// The whole page: the data as JSON in a script tag, the script inline.
pub fn page(r: &Report, w: &World) -> String {
    // `</` cannot appear inside a script element; JSON allows `<\/`.
    let data = data(r, w).to_string().replace("</", "<\\/");
    let title = format!("paddock-sim seed {}", r.seed)
        .replace('&', "&amp;")
        .replace('<', "&lt;");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>{title}</title>\n<style>{}</style></head>\n<body>\n{}\n<script id=\"data\" type=\"application/json\">{data}</script>\n<script>{}</script>\n</body></html>\n",
        include_str!("timeline.css"),
        include_str!("timeline.body.html"),
        include_str!("timeline.js"),
    )
}
