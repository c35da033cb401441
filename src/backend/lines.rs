//! The line splitter the stream parsers sit on, bounded by the reply's size cap (see
//! [`super::stream`], "The size cap").

/// Why a [`LineSplitter`] refused its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// One line (or the unterminated rest) of this many bytes is longer than the limit.
    Line(usize),
    /// The lines returned so far (terminators included) and the next line or the pending
    /// bytes add up to this many bytes, more than the limit.
    Body(usize),
}

/// Splits a byte stream into `\n`-terminated lines. `max` bounds the whole stream, not only one
/// line: every line returned is charged its bytes on the wire (with its `\n`), and a line that
/// would take the total past `max`, or pending bytes that do, are an error. So the number of
/// lines, and whatever a caller keeps per line, is bounded by `max` too.
#[derive(Debug)]
pub struct LineSplitter {
    buf: Vec<u8>,
    /// Start of the unconsumed part of `buf`.
    start: usize,
    /// Bytes of `buf[start..]` already known to hold no newline.
    scanned: usize,
    /// Bytes of the lines already returned, terminators included.
    consumed: usize,
    max: usize,
}

impl LineSplitter {
    /// A splitter for a stream of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        LineSplitter {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            consumed: 0,
            max,
        }
    }

    /// Appends bytes.
    pub fn feed(&mut self, data: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// The next complete line (without `\n` and a trailing `\r`), `Ok(None)` when none is
    /// complete yet, an error when a line exceeds the limit or the stream would.
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, Overflow> {
        let pending = &self.buf[self.start..];
        match pending[self.scanned..].iter().position(|&b| b == b'\n') {
            Some(i) => {
                let len = self.scanned + i;
                if len > self.max {
                    return Err(Overflow::Line(len));
                }
                let total = self.consumed.saturating_add(len + 1);
                if total > self.max {
                    return Err(Overflow::Body(total));
                }
                let mut line = pending[..len].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.start += len + 1;
                self.consumed = total;
                self.scanned = 0;
                Ok(Some(line))
            }
            None => {
                self.scanned = pending.len();
                self.check_pending()?;
                Ok(None)
            }
        }
    }

    /// An error when the unconsumed bytes exceed the limit, alone or with the lines returned.
    pub fn check_pending(&self) -> Result<(), Overflow> {
        let len = self.buf.len() - self.start;
        let total = self.consumed.saturating_add(len);
        if len > self.max {
            Err(Overflow::Line(len))
        } else if total > self.max {
            Err(Overflow::Body(total))
        } else {
            Ok(())
        }
    }

    /// Everything not yet returned as a line.
    pub fn take_rest(&mut self) -> Vec<u8> {
        let rest = self.buf.split_off(self.start);
        self.buf.clear();
        self.start = 0;
        self.scanned = 0;
        rest
    }
}
