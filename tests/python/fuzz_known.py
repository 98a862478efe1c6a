"""Every deliberate difference between Paddock and the reference (Apache
ZooKeeper 3.8.0, Debian's 3.8.0-11+deb12u2 with its security patches) that
the differential fuzzer (difffuzz.py) knows of, with the reason, in one
place.

Each entry says how the fuzzer deals with it:
- "not generated": the generator never sends the input that shows it
  (the generator reads `generated()` to decide, so the list and the
  generator cannot drift apart);
- "normalised": both transcripts are rewritten the same way before they
  are compared (the rewriting is in difffuzz.normalise, named by the key).
Nothing is dropped silently: a run prints how often each entry applied.
"""

KNOWN = {
    "null-path": dict(
        how="not generated",
        why="ZooKeeper 3.8 throws a NullPointerException for a request whose path "
            "is a null ustring (length -1) and drops the connection without a reply; "
            "Paddock refuses the request as malformed and closes the connection with "
            "a logged reason. Neither answers; the difference is only what is logged.",
    ),
    "mixed-watch-modes": dict(
        how="not generated",
        why="ZooKeeper 3.8 keeps one watch mode per (connection, path): addWatch on a "
            "path where the connection has a one-shot watch turns it persistent, and "
            "a later exists/getData/getChildren watch turns a persistent watch back "
            "into a one-shot one (ZOOKEEPER-4466, fixed in 3.9.0). Paddock keeps "
            "each kind, as 3.9 does. The generator gives each (session, path) one "
            "kind of watch: one-shot or persistent or persistent-recursive.",
    ),
    "standalone-check": dict(
        how="not generated",
        why="check (op 13) outside a multi is a 3.9 operation; Paddock answers it as "
            "3.9 does (test_paddock.py::test_standalone_check_3_9), 3.8 does not "
            "know it.",
    ),
    "watcher-types-3.9": dict(
        how="not generated",
        why="removeWatches/checkWatches with WatcherType Persistent (4) or "
            "PersistentRecursive (5) are 3.9's (ZOOKEEPER-4472); 3.8 answers "
            "MarshallingError. And in 3.8 the Children (1) and Data (2) types also "
            "match a persistent watch on the path (it sits in the same tables), in "
            "3.9 and Paddock only one-shot ones. Paddock follows 3.9. The generator "
            "sends types 4 and 5 never, and 1 and 2 only for paths where the "
            "session has no persistent watch (Any (3), and invalid types, anywhere).",
    ),
    "checkwatches-any-connection": dict(
        how="not generated",
        why="ZooKeeper 3.8's checkWatches answers OK for a path any connection "
            "watches (WatchManager.containsWatcher looks at the path's watcher set, "
            "not at the caller; fixed in 3.9 by ZOOKEEPER-4466). Paddock answers "
            "for the caller's own watches, as 3.9 does. The generator sends "
            "checkWatches only on paths no other session has watched (removeWatches, "
            "which 3.8 checks per connection, otherwise).",
    ),
    "createttl-nonttl-mode": dict(
        how="not generated",
        why="createTTL (op 21) with a non-TTL mode and a negative ttl passes "
            "ZooKeeper 3.8's checks, then applying the TTL txn throws and the "
            "server exits. Paddock answers BadArguments at that point, after the "
            "parent, ACL and exists checks, which it answers as ZooKeeper does.",
    ),
    "malformed-body": dict(
        how="not generated",
        why="A request whose body is short, malformed or followed by extra bytes (a "
            "multiRead op without its watch flag, a ttl field after a plain "
            "CreateRequest): ZooKeeper answers MarshallingError for a short record "
            "and ignores trailing bytes, keeping the connection; Paddock closes the "
            "connection with a logged reason, as its design card says a malformed "
            "frame is handled (one place decides, its reader refuses short and "
            "trailing data). A client library never sends one.",
    ),
    "non-bmp-as-cesu8": dict(
        how="not generated",
        why="ZooKeeper's jute writer encodes each UTF-16 unit of a string on its own, so "
            "a character beyond the BMP goes out as CESU-8 (two 3-byte surrogates), which "
            "strict UTF-8 decoders (Python's, Go's, Rust's, so kazoo and the Rust "
            "clients) refuse and Java's own turns into two U+FFFD. Paddock writes UTF-8. "
            "It shows only where a server echoes such a character: a sync path, an ACL "
            "or auth id (paths holding one are refused). Reading, Paddock decodes as "
            "ZooKeeper does. The generator sends lone surrogates, never a whole "
            "character beyond the BMP; test_difffuzz.py::"
            "test_invalid_utf8_decodes_as_zookeeper shows the difference as it stands.",
    ),
    "follower-sync-zxid": dict(
        how="normalised",
        why="In ensemble mode the zxid in a sync reply's header is not compared. "
            "A ZooKeeper 3.8 follower applies committed requests of different "
            "sessions on parallel CommitProcessor workers, so a sync of one session "
            "can be answered (with the last zxid applied so far) before another "
            "session's commit that preceded it is applied: the same run gave 62 "
            "and 63 on reruns (seed 7300108). Paddock answers after applying "
            "everything committed before the sync. Standalone runs compare it.",
    ),
    "event-zxid": dict(
        how="normalised",
        why="ZooKeeper 3.8 sends every watch notification with zxid -1 in its "
            "header; 3.9 (ZOOKEEPER-4655) and Paddock send the zxid of the txn that "
            "fired it. Clients of 3.8 ignore the field. Event headers' zxids are "
            "not compared.",
    ),
}


def generated(name):
    """Whether the generator may produce inputs that show difference `name`."""
    return KNOWN[name]["how"] != "not generated"


def describe():
    return "\n".join("- %s (%s): %s" % (k, v["how"], v["why"]) for k, v in KNOWN.items())
