//! The jute binary encoding: big-endian integers, length-prefixed buffers,
//! strings and vectors (-1 means null), records as their fields in order.
//!
//! [`Reader`] refuses short data and, through [`Reader::finish`], trailing
//! data: a frame either decodes exactly or is an error value, never a panic.

use thiserror::Error;

/// Why a client frame could not be decoded. Each variant closes the
/// connection with a logged reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("frame too short: needed {need} more bytes at offset {at}")]
    Short { at: usize, need: usize },
    #[error("{extra} trailing bytes after the record")]
    Trailing { extra: usize },
    #[error("negative length {len} at offset {at}")]
    NegativeLength { at: usize, len: i32 },
    #[error("length {len} exceeds the frame at offset {at}")]
    LengthTooLarge { at: usize, len: i32 },
    #[error("string is neither UTF-8 nor CESU-8")]
    BadString,
    #[error("unknown opcode {0}")]
    UnknownOpcode(i32),
    #[error("null where a value is required")]
    UnexpectedNull,
    #[error("bad multi header: {0}")]
    BadMulti(&'static str),
}

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Short {
                at: self.pos,
                need: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.take(1)?[0] != 0)
    }

    /// A length for a buffer/string/vector: `None` for -1 (null).
    fn len(&mut self) -> Result<Option<usize>, DecodeError> {
        let at = self.pos;
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(DecodeError::NegativeLength { at, len });
        }
        if len as usize > self.remaining() {
            return Err(DecodeError::LengthTooLarge { at, len });
        }
        Ok(Some(len as usize))
    }

    /// A buffer; null decodes as `None`.
    pub fn buffer_opt(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.len()? {
            None => Ok(None),
            Some(n) => Ok(Some(self.take(n)?)),
        }
    }

    /// A buffer; null decodes as empty (ZooKeeper treats them alike).
    pub fn buffer(&mut self) -> Result<Vec<u8>, DecodeError> {
        Ok(self.buffer_opt()?.map(|b| b.to_vec()).unwrap_or_default())
    }

    pub fn ustring_opt(&mut self) -> Result<Option<String>, DecodeError> {
        match self.buffer_opt()? {
            None => Ok(None),
            Some(b) => Ok(Some(decode_string(b)?)),
        }
    }

    /// A string; null decodes as empty.
    pub fn ustring(&mut self) -> Result<String, DecodeError> {
        Ok(self.ustring_opt()?.unwrap_or_default())
    }

    /// A vector count; null decodes as zero items. Each item is at least one
    /// byte, so a count larger than the remaining bytes is refused up front
    /// (no huge allocation from a hostile count).
    pub fn vec_len(&mut self) -> Result<usize, DecodeError> {
        let at = self.pos;
        let len = self.i32()?;
        if len == -1 {
            return Ok(0);
        }
        if len < 0 {
            return Err(DecodeError::NegativeLength { at, len });
        }
        if len as usize > self.remaining() {
            return Err(DecodeError::LengthTooLarge { at, len });
        }
        Ok(len as usize)
    }

    /// A vector of strings, each decoded as [`Reader::ustring`] does.
    ///
    /// The whole vector, length prefixes included, is checked as UTF-8
    /// once, and each item sliced out of it: a children list is dozens of
    /// short names, and checking them one by one cost more than the rest
    /// of the decode. An item the whole check does not cover (the vector is
    /// not UTF-8 as a whole, or an item does not start and end on character
    /// boundaries) is decoded on its own.
    pub fn vec_ustring(&mut self) -> Result<Vec<String>, DecodeError> {
        self.vec_of_strings()
    }

    /// [`Reader::vec_ustring`] into shared names.
    pub fn vec_names(&mut self) -> Result<Vec<std::sync::Arc<str>>, DecodeError> {
        self.vec_of_strings()
    }

    fn vec_of_strings<T: for<'s> From<&'s str> + From<String>>(
        &mut self,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.vec_len()?;
        let start = self.pos;
        for _ in 0..n {
            self.buffer_opt()?;
        }
        let items = &self.buf[start..self.pos];
        let text = std::str::from_utf8(items).ok();
        let mut r = Reader::new(items);
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let item = match r.buffer_opt()? {
                None => T::from(""),
                Some(b) => match text.and_then(|t| t.get(r.pos - b.len()..r.pos)) {
                    Some(s) => T::from(s),
                    None => T::from(decode_string(b)?),
                },
            };
            v.push(item);
        }
        Ok(v)
    }

    /// Refuses trailing bytes.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return Err(DecodeError::Trailing {
                extra: self.remaining(),
            });
        }
        Ok(())
    }
}

/// Decodes a jute string as ZooKeeper's Java server does (`new String(bytes,
/// UTF_8)`): valid UTF-8 as is, and each malformed part as one U+FFFD.
///
/// Rust's `from_utf8_lossy` and Java's decoder agree on most malformed
/// input but not all, and the difference is visible: sync echoes its path,
/// getACL and whoAmI echo ids. Java replaces a 3-byte sequence that encodes
/// a surrogate (CESU-8, as ZooKeeper 3.4's client wrote characters outside
/// the BMP) by one U+FFFD where Rust emits three, and it swallows a
/// truncated sequence at the end as one. The rules below are Java's (JDK
/// 17 `String.decodeUTF8_UTF16`), checked byte for byte against ZooKeeper
/// 3.8 by tests/python/test_difffuzz.py::test_invalid_utf8_decodes_as_zookeeper.
/// A malformed path therefore holds U+FFFD and is refused as ZooKeeper
/// refuses it (BadArguments), not as a broken frame.
pub fn decode_string(b: &[u8]) -> Result<String, DecodeError> {
    match std::str::from_utf8(b) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Ok(decode_like_java(b)),
    }
}

fn decode_like_java(b: &[u8]) -> String {
    const REPL: char = '\u{FFFD}';
    let cont = |x: u8| x & 0xC0 == 0x80;
    let mut out = String::with_capacity(b.len() + 8);
    let mut i = 0;
    while i < b.len() {
        let b1 = b[i];
        let rest = b.len() - i - 1;
        match b1 {
            0x00..=0x7F => {
                out.push(b1 as char);
                i += 1;
            }
            0xC2..=0xDF => {
                if rest == 0 {
                    out.push(REPL);
                    break;
                }
                if cont(b[i + 1]) {
                    let c = (u32::from(b1 & 0x1F) << 6) | u32::from(b[i + 1] & 0x3F);
                    out.push(char::from_u32(c).unwrap_or(REPL));
                    i += 2;
                } else {
                    out.push(REPL);
                    i += 1;
                }
            }
            0xE0..=0xEF => {
                // An E0 lead with a second byte below A0 is an overlong form.
                let bad2 = |x: u8| (b1 == 0xE0 && x & 0xE0 == 0x80) || !cont(x);
                if rest >= 2 {
                    let (b2, b3) = (b[i + 1], b[i + 2]);
                    if bad2(b2) {
                        out.push(REPL);
                        i += 1;
                    } else if !cont(b3) {
                        out.push(REPL);
                        i += 2;
                    } else {
                        let c = (u32::from(b1 & 0x0F) << 12)
                            | (u32::from(b2 & 0x3F) << 6)
                            | u32::from(b3 & 0x3F);
                        // A surrogate (D800-DFFF) is one malformed sequence.
                        out.push(char::from_u32(c).unwrap_or(REPL));
                        i += 3;
                    }
                } else if rest == 1 && bad2(b[i + 1]) {
                    out.push(REPL);
                    i += 1;
                } else {
                    // A truncated sequence at the end: one U+FFFD for all of it.
                    out.push(REPL);
                    break;
                }
            }
            0xF0..=0xF7 => {
                let bad2 = |x: u8| {
                    b1 > 0xF4
                        || (b1 == 0xF0 && !(0x90..=0xBF).contains(&x))
                        || (b1 == 0xF4 && x & 0xF0 != 0x80)
                        || !cont(x)
                };
                if rest >= 3 {
                    let (b2, b3, b4) = (b[i + 1], b[i + 2], b[i + 3]);
                    let c = (u32::from(b1 & 0x07) << 18)
                        | (u32::from(b2 & 0x3F) << 12)
                        | (u32::from(b3 & 0x3F) << 6)
                        | u32::from(b4 & 0x3F);
                    if cont(b2) && cont(b3) && cont(b4) && (0x10000..=0x10FFFF).contains(&c) {
                        out.push(char::from_u32(c).unwrap_or(REPL));
                        i += 4;
                    } else {
                        out.push(REPL);
                        i += if bad2(b2) {
                            1
                        } else if !cont(b3) {
                            2
                        } else {
                            3
                        };
                    }
                } else if b1 > 0xF4 || (rest >= 1 && bad2(b[i + 1])) {
                    out.push(REPL);
                    i += 1;
                } else {
                    // Truncated at the end: the lead and its second byte are
                    // one U+FFFD; a third byte that is no continuation starts
                    // over, else it is swallowed too.
                    out.push(REPL);
                    if rest == 2 && !cont(b[i + 2]) {
                        i += 2;
                    } else {
                        break;
                    }
                }
            }
            // Stray continuation bytes, C0/C1 (always overlong), F8-FF.
            _ => {
                out.push(REPL);
                i += 1;
            }
        }
    }
    out
}

/// Appends jute-encoded values to a byte vector.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer { buf: Vec::new() }
    }
    pub fn with_capacity(n: usize) -> Writer {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.buf.push(v as u8);
        self
    }
    pub fn buffer(&mut self, v: &[u8]) -> &mut Self {
        self.i32(v.len() as i32);
        self.buf.extend_from_slice(v);
        self
    }
    pub fn buffer_opt(&mut self, v: Option<&[u8]>) -> &mut Self {
        match v {
            None => self.i32(-1),
            Some(b) => self.buffer(b),
        }
    }
    pub fn ustring(&mut self, v: &str) -> &mut Self {
        self.buffer(v.as_bytes())
    }
    pub fn vec_ustring<S: AsRef<str>>(&mut self, v: &[S]) -> &mut Self {
        self.i32(v.len() as i32);
        for s in v {
            self.ustring(s.as_ref());
        }
        self
    }
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_refuses_short_and_trailing() {
        let mut r = Reader::new(&[0, 0, 0]);
        assert!(matches!(r.i32(), Err(DecodeError::Short { .. })));
        let mut r = Reader::new(&[0, 0, 0, 1, 9]);
        assert_eq!(r.i32().unwrap(), 1);
        assert_eq!(r.finish(), Err(DecodeError::Trailing { extra: 1 }));
    }

    #[test]
    fn hostile_lengths_are_errors_not_allocations() {
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff]);
        assert!(matches!(
            r.vec_len(),
            Err(DecodeError::LengthTooLarge { .. })
        ));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xfe]);
        assert!(matches!(
            r.buffer_opt(),
            Err(DecodeError::NegativeLength { .. })
        ));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(r.buffer_opt().unwrap(), None);
    }

    #[test]
    fn string_vectors_decode_like_their_items() {
        let long = "n".repeat(200);
        let lists: Vec<Vec<Option<Vec<u8>>>> = vec![
            vec![],
            vec![Some(b"item-0000000001".to_vec()), Some(b"a".to_vec())],
            vec![Some(Vec::new()), None, Some(b"x".to_vec())],
            // Non-ASCII UTF-8, and a length prefix that is not ASCII.
            vec![Some("caf\u{e9}".into()), Some(long.clone().into_bytes())],
            // Malformed (CESU-8) items decode item by item.
            vec![
                Some(b"ok".to_vec()),
                Some(vec![0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80]),
            ],
            // A length prefix whose last byte (0xC3) joins the item's first
            // byte (0xA9) into one character: the whole vector is UTF-8,
            // the item alone is not.
            vec![Some([vec![0xA9], vec![b'b'; 0xC2]].concat())],
        ];
        for list in lists {
            let mut w = Writer::new();
            w.i32(list.len() as i32);
            for item in &list {
                w.buffer_opt(item.as_deref());
            }
            let bytes = w.into_vec();
            let mut one_by_one = Reader::new(&bytes);
            let n = one_by_one.vec_len().unwrap();
            let expect: Vec<String> = (0..n).map(|_| one_by_one.ustring().unwrap()).collect();
            let mut r = Reader::new(&bytes);
            assert_eq!(r.vec_ustring().unwrap(), expect);
            r.finish().unwrap();
        }
        // A short vector is an error, as before.
        let mut r = Reader::new(&[0, 0, 0, 2, 0, 0, 0, 1, b'a']);
        assert!(matches!(r.vec_ustring(), Err(DecodeError::Short { .. })));
    }

    #[test]
    fn malformed_strings_decode_as_java_does() {
        // (bytes, what ZooKeeper 3.8 on Java 17 answers to a sync of them)
        let cases: &[(&[u8], &str)] = &[
            (&[0xED, 0xA0, 0xBD], "\u{FFFD}"),
            (&[0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80], "\u{FFFD}\u{FFFD}"),
            (&[0xED, 0xB8, 0x80], "\u{FFFD}"),
            (&[0xC0, 0x80], "\u{FFFD}\u{FFFD}"),
            (&[0xE2, 0x82, b'x'], "\u{FFFD}x"),
            (&[0xE2, 0x82], "\u{FFFD}"),
            (&[0xE0, 0x80, 0x80], "\u{FFFD}\u{FFFD}\u{FFFD}"),
            (&[0xE0, 0x9F, 0xBF], "\u{FFFD}\u{FFFD}\u{FFFD}"),
            (&[0xF0, 0x9F, 0x98], "\u{FFFD}"),
            (&[0xF0, 0x9F, 0x98, b'x'], "\u{FFFD}x"),
            (&[0xF0, 0x90, 0x80], "\u{FFFD}"),
            (
                &[0xF4, 0x90, 0x80, 0x80],
                "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}",
            ),
            (&[0xC3, b'x'], "\u{FFFD}x"),
            (&[b'a', 0xED, b'b', 0xA0], "a\u{FFFD}b\u{FFFD}"),
            (&[0xF0, 0x9F, 0x98, 0x80], "\u{1F600}"),
        ];
        for (bytes, want) in cases {
            assert_eq!(decode_string(bytes).unwrap(), *want, "{bytes:02x?}");
        }
    }
}
