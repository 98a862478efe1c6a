//! Path rules of ZooKeeper's `PathUtils.validatePath`: absolute, no empty
//! segments, no trailing slash, no `.`/`..` segments, no NUL or control
//! characters, none of the characters Java strings would hold as
//! surrogates or in the private-use/special ranges.

/// Why a path is not a valid znode path.
pub fn validate(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("path length must be > 0");
    }
    if !path.starts_with('/') {
        return Err("path must start with / character");
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err("path must not end with / character");
    }
    if path.is_ascii() {
        validate_ascii(path.as_bytes())
    } else {
        validate_chars(path)
    }
}

/// `validate`'s scan for an ASCII path, byte by byte (every path the
/// recipes make; the char scan cost more than the rest of a create). The
/// same checks in the same order as `validate_chars`, narrowed to ASCII.
fn validate_ascii(b: &[u8]) -> Result<(), &'static str> {
    let (mut last, mut before_last) = (b'/', 0u8);
    for i in 1..b.len() {
        let c = b[i];
        let next_ends = b.get(i + 1).is_none_or(|&n| n == b'/');
        if c == 0 {
            return Err("null character not allowed");
        } else if c == b'/' && last == b'/' {
            return Err("empty node name specified");
        } else if c == b'.' && next_ends && (last == b'/' || (last == b'.' && before_last == b'/'))
        {
            return Err("relative paths not allowed");
        } else if (1..=0x1f).contains(&c) || c == 0x7f {
            return Err("invalid character");
        }
        before_last = last;
        last = c;
    }
    Ok(())
}

/// `validate`'s scan after the prefix checks, character by character.
fn validate_chars(path: &str) -> Result<(), &'static str> {
    // One pass, no allocation: `last` and `before_last` are the two
    // characters before `c`.
    let mut chars = path.chars().skip(1).peekable();
    let (mut last, mut before_last) = ('/', '\0');
    while let Some(c) = chars.next() {
        let next_ends = matches!(chars.peek(), None | Some('/'));
        if c == '\0' {
            return Err("null character not allowed");
        } else if c == '/' && last == '/' {
            return Err("empty node name specified");
        } else if c == '.' && next_ends && (last == '/' || (last == '.' && before_last == '/')) {
            return Err("relative paths not allowed");
        } else if ('\u{1}'..='\u{1f}').contains(&c)
            || ('\u{7f}'..='\u{9f}').contains(&c)
            || ('\u{e000}'..='\u{f8ff}').contains(&c)
            || ('\u{fff0}'..='\u{ffff}').contains(&c)
            || (c as u32) > 0xffff
        {
            // Java holds characters beyond the BMP as surrogates
            // (0xd800-0xdfff), which ZooKeeper refuses; Rust never
            // holds lone surrogates in a str.
            return Err("invalid character");
        }
        before_last = last;
        last = c;
    }
    Ok(())
}

/// Where the last '/' is. A plain backward scan: paths are short, and
/// `str::rfind`'s general search cost more than the scan on every txn.
pub fn last_slash(path: &str) -> Option<usize> {
    path.bytes().rposition(|b| b == b'/')
}

/// The parent of a valid non-root path ("/" for top-level nodes).
pub fn parent(path: &str) -> &str {
    match last_slash(path) {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

/// The last segment of a path.
pub fn name(path: &str) -> &str {
    match last_slash(path) {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// `parent` joined with a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        ["/", child].concat()
    } else {
        [parent, "/", child].concat()
    }
}

/// A sequential node's path: `base` and the parent's counter as ZooKeeper
/// prints it (`%010d`). Built by hand: it runs on every sequential create,
/// and the formatter cost more than the rest of the name.
pub fn sequential(base: &str, seq: i32) -> String {
    let Ok(mut n) = u32::try_from(seq) else {
        // A wrapped counter keeps its sign inside the ten places.
        return format!("{base}{seq:010}");
    };
    let mut digits = [b'0'; 10];
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let mut out = String::with_capacity(base.len() + 10);
    out.push_str(base);
    out.extend(digits.iter().map(|&d| d as char));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_scan_agrees_with_the_char_scan() {
        // Every path of up to 4 characters over an alphabet with each rule's
        // characters, after the leading '/'.
        let alphabet = [b'a', b'/', b'.', 0u8, 0x1f, 0x7f, b' '];
        let mut paths = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = paths
                .iter()
                .flat_map(|p: &Vec<u8>| {
                    alphabet.iter().map(move |&c| {
                        let mut q = p.clone();
                        q.push(c);
                        q
                    })
                })
                .collect();
            paths.extend(longer);
        }
        for p in paths {
            let mut full = vec![b'/'];
            full.extend(p);
            let s = std::str::from_utf8(&full).expect("ASCII");
            if s.len() > 1 && !s.ends_with('/') {
                assert_eq!(validate_ascii(&full), validate_chars(s), "{s:?}");
            }
        }
    }

    #[test]
    fn last_slash_is_rfind() {
        for p in [
            "",
            "/",
            "a",
            "/a",
            "/a/b",
            "/a/b/",
            "//",
            "/é/ü",
            "/a\u{1F600}/b",
        ] {
            assert_eq!(last_slash(p), p.rfind('/'), "{p:?}");
        }
    }

    #[test]
    fn sequential_names_pad_like_printf() {
        for n in [
            0,
            7,
            10,
            999_999_999,
            1_000_000_000,
            i32::MAX,
            -1,
            -42,
            i32::MIN,
        ] {
            assert_eq!(sequential("/q/item-", n), format!("/q/item-{n:010}"), "{n}");
        }
        assert_eq!(sequential("/a", 5), "/a0000000005");
        assert_eq!(sequential("/a", -5), "/a-000000005");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }

    #[test]
    fn zookeeper_path_rules() {
        for ok in [
            "/",
            "/a",
            "/a/b",
            "/a.b",
            "/..a",
            "/...",
            "/a/...",
            "/a/b..",
            "/.a/..b/c.",
            "/a/.b",
            "/zookeeper",
            "/\u{e9}t\u{e9}",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/./b",
            "/a/../b",
            "/a/..",
            "/a/.",
            "/./a",
            "/a\0",
            "/\u{1}",
            "/\u{1F600}",
            "/\u{f000}",
            "/\u{e000}",
            "/\u{fffd}",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn parents_and_names() {
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(name("/a/b"), "b");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }
}
