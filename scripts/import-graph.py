#!/usr/bin/env python3
"""Prints the module graph of core/src from its `use crate::` lines (and
`crate::x::` paths in code) and fails if it has a cycle.

A node is a top-level module of the crate (`node`, `zab`, `storage`, ...),
except that the files (or folders) of `zab`, `storage` and `zk` are nodes
of their own (`zab::leader`, `zk::password`, `zk::quorum`, ...): the graph
a newcomer draws. `zk` holds parts on both sides of `node`: ZooKeeper's
password rule, which sessions check, and the follow-mode bridge, which
drives a `Node`. The files of `node/`
are one node: they are `impl Node` blocks of one type.
Usage: scripts/import-graph.py [core/src]"""
import os, re, sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "core", "src")
SPLIT = {"zab", "storage", "zk"}

def unit_of_file(rel):
    parts = rel[:-3].split("/")
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts == ["lib"]:
        return None
    if parts[0] in SPLIT and len(parts) > 1:
        return parts[0] + "::" + parts[1]
    return parts[0]

def unit_of_path(path):
    parts = path.split("::")
    if parts[0] in SPLIT and len(parts) > 1 and (
            os.path.exists(os.path.join(root, parts[0], parts[1] + ".rs"))
            or os.path.isdir(os.path.join(root, parts[0], parts[1]))):
        return parts[0] + "::" + parts[1]
    return parts[0]

# Names the crate root re-exports (`crate::Node` is `node`'s).
reexports = {}
lib = open(os.path.join(root, "lib.rs")).read()
for m in re.finditer(r"pub use ([a-z_]+)::\{?([A-Za-z_, ]+)\}?;", lib):
    for name in m.group(2).split(","):
        reexports[name.strip()] = m.group(1)
for m in re.finditer(r"pub use ([a-z_]+)::\*;", lib):
    mod = m.group(1)
    path = os.path.join(root, mod + ".rs")
    if not os.path.exists(path):
        path = os.path.join(root, mod, "mod.rs")
    for t in re.finditer(r"pub (?:struct|enum|fn|const|type|trait) ([A-Za-z_]+)", open(path).read()):
        reexports[t.group(1)] = mod

edges = {}
for dirpath, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".rs"):
            continue
        rel = os.path.relpath(os.path.join(dirpath, f), root)
        me = unit_of_file(rel)
        if me is None:
            continue
        text = open(os.path.join(dirpath, f)).read()
        # Unit tests at the bottom of a file are not part of the graph.
        text = text.split("#[cfg(test)]\nmod tests")[0]
        edges.setdefault(me, set())
        for m in re.finditer(r"crate::([a-z_]+(?:::[a-z_]+)?)", text):
            dep = unit_of_path(m.group(1))
            if dep != me and os.path.exists(os.path.join(root, dep.split("::")[0])) or os.path.exists(os.path.join(root, dep.split("::")[0] + ".rs")):
                if dep != me:
                    edges[me].add(dep)
        for m in re.finditer(r"crate::([A-Z][A-Za-z_]*)", text):
            dep = reexports.get(m.group(1))
            if dep and dep != me:
                edges[me].add(dep)
        # A split module's mod.rs depends on the files it names beyond
        # declaring them (re-exports, paths): declaring is not using.
        if me in SPLIT:
            body = re.sub(r"^(?:pub )?mod [a-z_]+;", "", text, flags=re.M)
            for m in re.finditer(r"^(?:pub )?mod ([a-z_]+);", text, re.M):
                if re.search(r"\b" + m.group(1) + r"::", body):
                    edges[me].add(me + "::" + m.group(1))
        # `super::x` inside zab/ or storage/ means a sibling file or the parent.
        top = rel.split("/")[0]
        parent = rel[:-3].split("/")
        if parent[-1] == "mod":
            parent = parent[:-1]
        parent = parent[:-1]
        # Deeper down (zk/quorum/x.rs), `super::` stays inside the node.
        if top in SPLIT and len(parent) == 1:
            for m in re.finditer(r"\bsuper::\{?([a-z_]+)", text):
                sib = m.group(1)
                is_part = os.path.exists(os.path.join(root, top, sib + ".rs")) or os.path.isdir(os.path.join(root, top, sib))
                dep = top + "::" + sib if is_part else top
                if dep != me:
                    edges[me].add(dep)

for k in sorted(edges):
    print(f"{k} -> {', '.join(sorted(edges[k])) or '(nothing)'}")

# Cycle search (DFS, colours).
WHITE, GREY, BLACK = 0, 1, 2
colour = {k: WHITE for k in edges}
cycles = []
def dfs(u, stack):
    colour[u] = GREY
    stack.append(u)
    for v in sorted(edges.get(u, ())):
        if colour.get(v, WHITE) == GREY:
            cycles.append(stack[stack.index(v):] + [v])
        elif colour.get(v, WHITE) == WHITE:
            colour.setdefault(v, WHITE)
            dfs(v, stack)
    stack.pop()
    colour[u] = BLACK
for k in sorted(edges):
    if colour[k] == WHITE:
        dfs(k, [])
if cycles:
    for c in cycles:
        print("CYCLE: " + " -> ".join(c))
    sys.exit(1)
print("no cycle")
