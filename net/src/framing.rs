//! ZooKeeper's client framing: every packet is a 4-byte big-endian length
//! followed by that many bytes. A negative length or one above
//! `jute.maxbuffer` is a protocol violation that closes the connection
//! (ZooKeeper: "Len error"). On a connection that has not sent anything
//! yet, the first four bytes may instead be a four-letter word.

/// Why a connection's byte stream was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("negative frame length {len}")]
    NegativeLength { len: i32 },
    #[error("frame length {len} exceeds jute.maxbuffer {max}")]
    TooLong { len: i32, max: u32 },
}

/// The four-letter words ZooKeeper knows (`FourLetterCommands`). A known
/// word is answered (or refused by the whitelist); any other first int is
/// taken as a frame length.
pub const FOUR_LETTER_WORDS: &[&str] = &[
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srst", "srvr", "stat",
    "wchc", "wchp", "wchs", "mntr", "isro", "hash",
];

/// The word the first four bytes of a fresh connection spell, if ZooKeeper
/// knows it.
pub fn four_letter_word(first: [u8; 4]) -> Option<&'static str> {
    FOUR_LETTER_WORDS
        .iter()
        .copied()
        .find(|w| w.as_bytes() == first)
}

/// Takes the next complete frame (without its prefix) off the front of
/// `buf`, if one is there. `Ok(None)` means more bytes are needed.
pub fn split_frame(buf: &[u8], start: &mut usize, max: u32) -> Result<Option<Vec<u8>>, FrameError> {
    let avail = &buf[*start..];
    if avail.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([avail[0], avail[1], avail[2], avail[3]]);
    if len < 0 {
        return Err(FrameError::NegativeLength { len });
    }
    if len as u32 > max {
        return Err(FrameError::TooLong { len, max });
    }
    let len = len as usize;
    if avail.len() < 4 + len {
        return Ok(None);
    }
    let frame = avail[4..4 + len].to_vec();
    *start += 4 + len;
    Ok(Some(frame))
}

/// Drops the consumed prefix of the read buffer once it is worth it, so the
/// buffer does not grow without bound and we do not memmove per frame.
pub fn compact(buf: &mut Vec<u8>, start: &mut usize) {
    if *start == buf.len() {
        buf.clear();
        *start = 0;
    } else if *start > 64 * 1024 {
        buf.drain(..*start);
        *start = 0;
    }
}

/// Appends `frame` with its length prefix.
pub fn push_frame(out: &mut Vec<u8>, frame: &[u8]) {
    out.extend_from_slice(&(frame.len() as u32).to_be_bytes());
    out.extend_from_slice(frame);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_frames_and_waits_for_more() {
        let mut buf = Vec::new();
        push_frame(&mut buf, b"abc");
        push_frame(&mut buf, b"");
        buf.extend_from_slice(&[0, 0, 0, 5, 1]);
        let mut start = 0;
        assert_eq!(
            split_frame(&buf, &mut start, 100),
            Ok(Some(b"abc".to_vec()))
        );
        assert_eq!(split_frame(&buf, &mut start, 100), Ok(Some(Vec::new())));
        assert_eq!(split_frame(&buf, &mut start, 100), Ok(None));
        assert_eq!(start, 11);
    }

    #[test]
    fn refuses_negative_and_oversized_lengths() {
        let buf = (-1i32).to_be_bytes().to_vec();
        assert_eq!(
            split_frame(&buf, &mut 0, 100),
            Err(FrameError::NegativeLength { len: -1 })
        );
        let buf = 101i32.to_be_bytes().to_vec();
        assert_eq!(
            split_frame(&buf, &mut 0, 100),
            Err(FrameError::TooLong { len: 101, max: 100 })
        );
    }

    #[test]
    fn recognises_words() {
        assert_eq!(four_letter_word(*b"ruok"), Some("ruok"));
        assert_eq!(four_letter_word([0, 0, 0, 44]), None);
    }
}
