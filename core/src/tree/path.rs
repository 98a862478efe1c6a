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

/// The parent of a valid non-root path ("/" for top-level nodes).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

/// The last segment of a path.
pub fn name(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// `parent` joined with a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
