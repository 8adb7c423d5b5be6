//! Reads a file's lines from the end backwards, a block at a time, so that the newest audit
//! records are found without reading a log that may have grown for years.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

const BLOCK: u64 = 64 * 1024;

pub(super) struct ReverseLines {
    file: File,
    /// Bytes before this offset have not been read yet.
    unread: u64,
    /// Read bytes not yet returned: the tail of a line whose start is still unread.
    pending: Vec<u8>,
}

impl ReverseLines {
    /// Lines of `file` up to `len` bytes (the length at the time the caller looked, so that
    /// lines appended meanwhile are not half-read).
    pub(super) fn new(file: File, len: u64) -> Self {
        ReverseLines {
            file,
            unread: len,
            pending: Vec::new(),
        }
    }

    /// The previous line without its newline; `Ok(None)` at the start of the file. A file ending
    /// in a newline yields an empty line first.
    pub(super) fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(newline) = self.pending.iter().rposition(|&b| b == b'\n') {
                let line = self.pending.split_off(newline + 1);
                self.pending.truncate(newline);
                return Ok(Some(line));
            }
            if self.unread == 0 {
                if self.pending.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(&mut self.pending)));
            }
            let size = BLOCK.min(self.unread);
            self.unread -= size;
            // `size` ≤ BLOCK, which fits in usize.
            let mut block = vec![0u8; size as usize];
            self.file.read_exact_at(&mut block, self.unread)?;
            block.extend_from_slice(&self.pending);
            self.pending = block;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_backwards(contents: &[u8]) -> Vec<String> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(contents).unwrap();
        let mut reader = ReverseLines::new(file, contents.len() as u64);
        let mut lines = Vec::new();
        while let Some(line) = reader.next_line().unwrap() {
            lines.push(String::from_utf8(line).unwrap());
        }
        lines
    }

    #[test]
    fn yields_lines_newest_first() {
        assert_eq!(lines_backwards(b"a\nbb\nccc\n"), ["", "ccc", "bb", "a"]);
        assert_eq!(lines_backwards(b"a\nbb\ntorn"), ["torn", "bb", "a"]);
        assert_eq!(lines_backwards(b""), Vec::<String>::new());
        assert_eq!(lines_backwards(b"\n\n"), ["", ""]);
    }

    #[test]
    fn lines_spanning_blocks_are_joined() {
        let long = "x".repeat(BLOCK as usize * 2 + 17);
        let contents = format!("first\n{long}\nlast\n");
        assert_eq!(
            lines_backwards(contents.as_bytes()),
            ["", "last", long.as_str(), "first"]
        );
    }
}
