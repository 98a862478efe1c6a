"use strict";
window.addEventListener("error", function (e) {
  document.body.dataset.errors = (document.body.dataset.errors || "") + String(e.message) + ";";
});
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.getElementById("tl");
  const wrap = document.getElementById("wrap");
  const details = document.getElementById("details");
  const LANE_H = 30, LEFT = 96, TOP = 22, MSG_MAX = 5000;
  const ROLE = {leader: "#ffca28", follower: "#81d4fa", observer: "#ce93d8", looking: "#e0e0e0",
    standalone: "#ffca28", down: "#455a64"};
  const MARK = {crash: "#d50000", restart: "#2e7d32", partition: "#ef6c00", disk: "#6d4c41",
    clock: "#6a1b9a", pause: "#757575", fault: "#ef6c00", conn: "#90a4ae", note: "#b0bec5"};
  const OPC = {ok: "#43a047", err: "#fb8c00", lost: "#e53935", pending: "#9e9e9e"};
  let v0 = 0, v1 = D.end, selected = null;
  const shownLane = {}, shownKind = {};
  D.lanes.forEach(function (l) { shownLane[l.id] = true; });
  const kinds = Array.from(new Set(D.msgs.map(function (m) { return m.k; }))).sort();
  kinds.forEach(function (k) { shownKind[k] = true; });
  function hue(k) { let h = 0; for (const c of k) h = (h * 31 + c.charCodeAt(0)) % 360; return "hsl(" + h + ",65%,42%)"; }

  document.getElementById("title").textContent = "paddock-sim " + D.title;
  document.getElementById("sub").textContent = D.summary + "\n" + D.describe + "\nreplay: " + D.replay;
  if (D.violation) {
    const vd = document.getElementById("verdict");
    vd.hidden = false;
    vd.textContent = D.violation.kind + (D.violation.at_end ? " (found by the final checks)" : "") + ": " + D.violation.d;
  } else {
    document.getElementById("jump").disabled = true;
  }
  function box(parent, id, label, on, change) {
    const l = document.createElement("label");
    const c = document.createElement("input");
    c.type = "checkbox"; c.checked = on; c.dataset.id = id;
    c.addEventListener("change", function () { change(c.checked); draw(); });
    l.appendChild(c); l.appendChild(document.createTextNode(label));
    parent.appendChild(l);
  }
  D.lanes.forEach(function (l) { box(document.getElementById("flanes"), l.id, l.label, true, function (on) { shownLane[l.id] = on; }); });
  kinds.forEach(function (k) { box(document.getElementById("fkinds"), k, k, true, function (on) { shownKind[k] = on; }); });
  const legend = document.getElementById("legend");
  Object.keys(ROLE).forEach(function (r) { legend.insertAdjacentHTML("beforeend", '<span><i style="background:' + ROLE[r] + '"></i>' + r + "</span>"); });

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    (parent || svg).appendChild(e);
    return e;
  }
  function fmt(t) { return (t / 1e9).toFixed(t < 1e10 && v1 - v0 < 5e8 ? 6 : 3) + " s"; }
  function pick(e, text) {
    return function (ev) {
      ev.stopPropagation();
      if (selected) selected.classList.remove("sel");
      selected = e; e.classList.add("sel");
      details.textContent = text;
    };
  }

  function draw() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const W = Math.max(400, wrap.clientWidth || 1200) - LEFT - 10;
    const lanes = D.lanes.filter(function (l) { return shownLane[l.id]; });
    const y = {};
    lanes.forEach(function (l, i) { y[l.id] = TOP + i * LANE_H + LANE_H / 2; });
    const H = TOP + lanes.length * LANE_H + 10;
    svg.setAttribute("width", LEFT + W + 10);
    svg.setAttribute("height", H);
    const span = Math.max(1, v1 - v0);
    const x = function (t) { return LEFT + (t - v0) / span * W; };
    const inView = function (a, b) { return b >= v0 && a <= v1; };
    document.getElementById("range").textContent = fmt(v0) + " .. " + fmt(v1);
    // Time axis.
    const step = Math.pow(10, Math.floor(Math.log10(span / 8)));
    const tick = span / step > 40 ? step * 5 : span / step > 16 ? step * 2 : step;
    const axis = el("g", {"class": "axis"});
    for (let t = Math.ceil(v0 / tick) * tick; t <= v1; t += tick) {
      el("line", {x1: x(t), x2: x(t), y1: TOP - 6, y2: H, stroke: "#eceff1"}, axis);
      el("text", {x: x(t) + 2, y: TOP - 9}, axis).textContent = fmt(t);
    }
    // Lanes and their role bands.
    lanes.forEach(function (l) {
      const g = el("g", {"class": "lane", "data-lane": l.id});
      el("line", {x1: LEFT, x2: LEFT + W, y1: y[l.id], y2: y[l.id]}, g);
      el("text", {x: 4, y: y[l.id] + 4}, g).textContent = l.label + (l.note === "observer" ? " (obs)" : "");
    });
    D.bands.forEach(function (b) {
      if (y[b.lane] === undefined || !inView(b.t0, b.t1)) return;
      const x0 = Math.max(LEFT, x(b.t0)), x1 = Math.min(LEFT + W, x(b.t1));
      const r = el("rect", {"class": "band", x: x0, y: y[b.lane] - LANE_H / 2 + 3, width: Math.max(1, x1 - x0),
        height: LANE_H - 6, fill: ROLE[b.role] || "#eee"});
      r.addEventListener("click", pick(r, fmt(b.t0) + " .. " + fmt(b.t1) + "  server " + b.lane.slice(1) + ": " + b.role + " epoch " + b.epoch + "\n" + b.d));
      if (x1 - x0 > 40) el("text", {x: x0 + 3, y: y[b.lane] - 5, fill: "#37474f"}).textContent = b.role + " e" + b.epoch;
    });
    // Client operations.
    D.ops.forEach(function (o) {
      if (y[o.lane] === undefined || !inView(o.t0, o.t1)) return;
      const x0 = Math.max(LEFT, x(o.t0)), x1 = Math.min(LEFT + W, x(o.t1));
      const r = el("rect", {"class": "op", x: x0, y: y[o.lane] - 4, width: Math.max(1.5, x1 - x0), height: 8, fill: OPC[o.ok]});
      r.addEventListener("click", pick(r, fmt(o.t0) + " .. " + fmt(o.t1) + "  " + o.k + " (" + o.ok + ")\n" + o.d));
    });
    // Peer messages, send to delivery.
    let drawn = 0;
    for (const m of D.msgs) {
      if (drawn >= MSG_MAX) break;
      if (!shownKind[m.k] || y[m.f] === undefined || y[m.to] === undefined) continue;
      const t1 = m.t1 === null ? m.t0 + span / 200 : m.t1;
      if (!inView(m.t0, t1)) continue;
      drawn++;
      const p = el("line", {"class": "msg" + (m.t1 === null ? " dropped" : ""), x1: x(m.t0), y1: y[m.f], x2: x(t1),
        y2: m.t1 === null ? (y[m.f] + y[m.to]) / 2 : y[m.to], stroke: hue(m.k), "marker-end": "url(#arrow)"});
      p.addEventListener("click", pick(p, fmt(m.t0) + " -> " + (m.t1 === null ? "dropped" : fmt(m.t1)) + "  " + m.d));
    }
    svg.dataset.msgsDrawn = drawn;
    const defs = el("defs", {});
    const mk = el("marker", {id: "arrow", viewBox: "0 0 6 6", refX: 6, refY: 3, markerWidth: 5, markerHeight: 5, orient: "auto"}, defs);
    el("path", {d: "M0,0 L6,3 L0,6 z", fill: "#546e7a"}, mk);
    // Marks: faults, crashes, restarts, disk, clock, connections.
    D.marks.forEach(function (m) {
      if (!inView(m.t, m.t)) return;
      const targets = m.lane === "all" ? [] : [m.lane];
      if (m.lane === "all") {
        const l = el("line", {"class": "mark", x1: x(m.t), x2: x(m.t), y1: TOP, y2: H, stroke: MARK[m.k] || "#999", "stroke-dasharray": "2 4"});
        l.addEventListener("click", pick(l, fmt(m.t) + "  " + m.d));
      }
      targets.forEach(function (lane) {
        if (y[lane] === undefined) return;
        const cx = x(m.t), cy = y[lane];
        let s;
        if (m.k === "crash") s = el("path", {"class": "mark", d: "M" + (cx - 5) + "," + (cy - 5) + "l10,10m0,-10l-10,10", stroke: MARK.crash, "stroke-width": 3});
        else if (m.k === "restart") s = el("path", {"class": "mark", d: "M" + (cx - 5) + "," + (cy + 5) + "l5,-10l5,10z", fill: MARK.restart});
        else if (m.k === "conn" || m.k === "note") s = el("rect", {"class": "mark", x: cx - 1, y: cy - 9, width: 2, height: 6, fill: MARK[m.k]});
        else s = el("rect", {"class": "mark", x: cx - 4, y: cy - 12, width: 8, height: 8, fill: MARK[m.k] || "#999", transform: "rotate(45 " + cx + " " + (cy - 8) + ")"});
        s.dataset.kind = m.k;
        s.addEventListener("click", pick(s, fmt(m.t) + "  " + m.k + ": " + m.d));
      });
    });
    // The verdict, pinned where it fired.
    if (D.violation) {
      const g = el("g", {id: "violation"});
      const vx = Math.min(Math.max(x(D.violation.t), LEFT), LEFT + W);
      el("line", {x1: vx, x2: vx, y1: TOP - 4, y2: H}, g);
      el("text", {x: Math.min(vx + 3, LEFT + W - 120), y: TOP - 9 + 10}, g).textContent = "\u26a0 " + D.violation.kind + " " + fmt(D.violation.t);
      g.addEventListener("click", pick(g, fmt(D.violation.t) + "  " + D.violation.kind + ":\n" + D.violation.d));
    }
    document.body.dataset.rendered = "1";
    document.body.dataset.lanes = lanes.length;
  }

  function zoom(f, at) {
    const c = at === undefined ? (v0 + v1) / 2 : at;
    const span = Math.min(D.end * 1.05, Math.max(2000, (v1 - v0) * f));
    v0 = Math.max(0, c - (c - v0) * span / (v1 - v0));
    v1 = v0 + span;
    draw();
  }
  document.getElementById("zin").onclick = function () { zoom(0.5); };
  document.getElementById("zout").onclick = function () { zoom(2); };
  document.getElementById("fit").onclick = function () { v0 = 0; v1 = D.end; draw(); };
  document.getElementById("jump").onclick = function () {
    const t = D.violation.t, w = Math.max(D.end / 50, 2e6);
    v0 = Math.max(0, t - w * 0.8); v1 = v0 + w; draw();
    details.textContent = fmt(t) + "  " + D.violation.kind + ":\n" + D.violation.d;
  };
  wrap.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    const r = svg.getBoundingClientRect();
    const W = r.width - LEFT - 10;
    const at = v0 + (ev.clientX - r.left - LEFT) / W * (v1 - v0);
    zoom(ev.deltaY < 0 ? 0.8 : 1.25, Math.max(v0, Math.min(v1, at)));
  }, {passive: false});
  let dragX = null;
  wrap.addEventListener("mousedown", function (ev) { dragX = ev.clientX; wrap.classList.add("drag"); });
  window.addEventListener("mouseup", function () { dragX = null; wrap.classList.remove("drag"); });
  window.addEventListener("mousemove", function (ev) {
    if (dragX === null) return;
    const W = svg.getBoundingClientRect().width - LEFT - 10;
    const dt = (dragX - ev.clientX) / W * (v1 - v0);
    dragX = ev.clientX;
    const span = v1 - v0;
    v0 = Math.max(0, Math.min(D.end - span / 2, v0 + dt)); v1 = v0 + span;
    draw();
  });
  window.addEventListener("resize", draw);
  draw();
})();
