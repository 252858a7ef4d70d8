//! Incremental request parser (multibulk and inline) returning argument spans.
//!
//! Requests are never copied: each argument becomes a byte range into the read buffer. The
//! parser is resumable so that a huge request arriving in many reads is scanned once in total.

use std::ops::Range;

use super::ProtocolError;
use super::int::{MAX_INT_LEN, string2ll};

/// Bounds on what one client request may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted bulk argument, in bytes (Redis `proto-max-bulk-len`).
    pub max_bulk: usize,
    /// Largest accepted multibulk argument count.
    pub max_args: usize,
    /// Longest accepted inline request line, newline excluded. Unlike Redis, which only checks
    /// while no newline has arrived, a longer line is refused even when its newline is already
    /// buffered, so the outcome does not depend on how the bytes were split into reads.
    pub max_inline: usize,
    /// Deepest accepted nesting of aggregates in a backend reply.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk: 512 * 1024 * 1024,
            max_args: 1_048_576,
            max_inline: 64 * 1024,
            max_depth: 128,
        }
    }
}

/// The result of one [`RequestParser::parse`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseOutcome {
    /// More bytes are needed; call again with a longer buffer starting at the same byte.
    Incomplete,
    /// A whole request of `len` bytes; `inline` tells it came as an inline line rather than as
    /// multibulk. Zero spans means an empty request (`*0`, `*-1`, a blank line) to be skipped.
    Complete { len: usize, inline: bool },
}

/// What the parser is in the middle of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Nothing read yet.
    Idle,
    /// Inside a multibulk request.
    Multibulk,
    /// Inside an inline line; bytes before `scanned` hold no newline.
    Inline { scanned: usize },
}

/// A resumable request parser; one lives in every client session.
#[derive(Debug, Clone)]
pub struct RequestParser {
    mode: Mode,
    /// Offset of the next unparsed byte (multibulk).
    pos: usize,
    /// Arguments still expected (multibulk).
    remaining: usize,
    /// Length of the bulk whose `$<len>` header ended at `pos` but whose payload is incomplete.
    pending: Option<usize>,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestParser {
    /// A parser waiting for the first byte of a request.
    pub fn new() -> Self {
        RequestParser {
            mode: Mode::Idle,
            pos: 0,
            remaining: 0,
            pending: None,
        }
    }

    /// Parse the request at the start of `buf`, pushing one byte range per argument onto
    /// `spans` (relative to `buf[0]`).
    ///
    /// While `Incomplete`, the parser keeps its progress and the spans found so far, so the next
    /// call with a longer `buf` (same start, same `spans`) continues where this one stopped: a
    /// request arriving in many reads costs O(total length). On `Complete` or an error the parser
    /// resets itself; the caller clears `spans` before the next request. After an error the
    /// connection is beyond repair, like in Redis.
    pub fn parse(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        spans: &mut Vec<Range<usize>>,
    ) -> Result<ParseOutcome, ProtocolError> {
        let outcome = match self.mode {
            Mode::Idle => match buf.first() {
                None => Ok(ParseOutcome::Incomplete),
                Some(b'*') => self.multibulk_header(buf, limits, spans),
                Some(_) => self.inline(buf, 0, limits, spans),
            },
            Mode::Multibulk => self.multibulk_args(buf, limits, spans),
            Mode::Inline { scanned } => self.inline(buf, scanned, limits, spans),
        };
        if !matches!(outcome, Ok(ParseOutcome::Incomplete)) {
            *self = Self::new();
        }
        outcome
    }

    /// Reads `*<n>\r\n`, then the arguments.
    fn multibulk_header(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        spans: &mut Vec<Range<usize>>,
    ) -> Result<ParseOutcome, ProtocolError> {
        let (n, next) = match line_number(buf, 1) {
            Num::Incomplete => return Ok(ParseOutcome::Incomplete),
            Num::Invalid => return Err(ProtocolError::InvalidMultibulkLength),
            Num::Value(n, next) => (n, next),
        };
        if n <= 0 {
            return Ok(ParseOutcome::Complete {
                len: next,
                inline: false,
            });
        }
        if n > i64::from(i32::MAX) {
            return Err(ProtocolError::InvalidMultibulkLength);
        }
        // n fits in i32, so the conversion cannot fail on any supported platform.
        let n = usize::try_from(n).map_err(|_| ProtocolError::InvalidMultibulkLength)?;
        if n > limits.max_args {
            return Err(ProtocolError::TooManyArgs(limits.max_args));
        }
        // Like Redis, trust the count only up to a point before the arguments actually arrive.
        spans.reserve(n.min(1024));
        self.mode = Mode::Multibulk;
        self.pos = next;
        self.remaining = n;
        self.multibulk_args(buf, limits, spans)
    }

    /// Reads `$<len>\r\n<bytes>\r\n` until every announced argument is in.
    fn multibulk_args(
        &mut self,
        buf: &[u8],
        limits: &Limits,
        spans: &mut Vec<Range<usize>>,
    ) -> Result<ParseOutcome, ProtocolError> {
        while self.remaining > 0 {
            let len = match self.pending {
                Some(len) => len,
                None => {
                    let Some(&b) = buf.get(self.pos) else {
                        return Ok(ParseOutcome::Incomplete);
                    };
                    if b != b'$' {
                        return Err(ProtocolError::ExpectedBulk(char::from(b)));
                    }
                    let len = match line_number(buf, self.pos + 1) {
                        Num::Incomplete => return Ok(ParseOutcome::Incomplete),
                        Num::Invalid => return Err(ProtocolError::InvalidBulkLength),
                        Num::Value(len, next) => {
                            self.pos = next;
                            len
                        }
                    };
                    let len = u64::try_from(len).map_err(|_| ProtocolError::InvalidBulkLength)?;
                    match usize::try_from(len) {
                        Ok(l) if l <= limits.max_bulk => l,
                        _ => return Err(ProtocolError::BulkTooLarge(len, limits.max_bulk)),
                    }
                }
            };
            let start = self.pos;
            let end = start
                .checked_add(len)
                .ok_or(ProtocolError::BulkTooLarge(len as u64, limits.max_bulk))?;
            if buf.len().saturating_sub(2) < end {
                self.pending = Some(len);
                return Ok(ParseOutcome::Incomplete);
            }
            if buf[end] != b'\r' || buf[end + 1] != b'\n' {
                return Err(ProtocolError::MissingCrlf);
            }
            spans.push(start..end);
            self.pos = end + 2;
            self.pending = None;
            self.remaining -= 1;
        }
        Ok(ParseOutcome::Complete {
            len: self.pos,
            inline: false,
        })
    }

    /// Looks for the end of an inline line from `scanned` on, then splits it.
    fn inline(
        &mut self,
        buf: &[u8],
        scanned: usize,
        limits: &Limits,
        spans: &mut Vec<Range<usize>>,
    ) -> Result<ParseOutcome, ProtocolError> {
        // The line (newline excluded) may hold at most max_inline bytes, so the newline is at
        // index max_inline or before; deciding on that window keeps the outcome independent of
        // how the bytes were split into reads.
        let window = buf.len().min(limits.max_inline.saturating_add(1));
        let found = buf
            .get(scanned..window)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'));
        let Some(nl) = found.map(|i| scanned + i) else {
            if buf.len() > limits.max_inline {
                return Err(ProtocolError::InlineTooLarge);
            }
            self.mode = Mode::Inline { scanned: window };
            return Ok(ParseOutcome::Incomplete);
        };
        let line_end = if nl > 0 && buf[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        split_inline(&buf[..line_end], spans)?;
        Ok(ParseOutcome::Complete {
            len: nl + 1,
            inline: true,
        })
    }
}

/// Parses one request at the start of `buf` with a fresh parser (see [`RequestParser::parse`]).
pub fn parse_request(
    buf: &[u8],
    limits: &Limits,
    spans: &mut Vec<Range<usize>>,
) -> Result<ParseOutcome, ProtocolError> {
    RequestParser::new().parse(buf, limits, spans)
}

/// The arguments of a parsed request: the buffer and the spans the parser found in it.
#[derive(Debug, Clone, Copy)]
pub struct ReqArgs<'a> {
    /// The buffer the spans index into.
    pub buf: &'a [u8],
    /// One range per argument.
    pub spans: &'a [Range<usize>],
}

impl<'a> ReqArgs<'a> {
    /// Pairs a buffer with the spans parsed from it.
    pub fn new(buf: &'a [u8], spans: &'a [Range<usize>]) -> Self {
        ReqArgs { buf, spans }
    }

    /// Number of arguments, the command name included.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True for an empty request.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The `i`-th argument, or `None` past the end (or for a span outside the buffer).
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        self.spans.get(i).and_then(|r| self.buf.get(r.clone()))
    }

    /// The arguments in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let buf = self.buf;
        self.spans.iter().filter_map(move |r| buf.get(r.clone()))
    }
}

/// A header number read by [`line_number`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Num {
    /// The number and the offset just past its `\r\n`.
    Value(i64, usize),
    /// The line is not finished yet and may still become valid.
    Incomplete,
    /// The line can never be a valid number.
    Invalid,
}

/// Reads a decimal number from `buf[start..]` up to `\r\n` with [`string2ll`] rules. A line
/// that has no CR within the longest valid number ([`MAX_INT_LEN`]) can never be valid and is
/// refused at once; Redis would buffer it up to 64 KiB first, then refuse it too.
#[inline]
pub(crate) fn line_number(buf: &[u8], start: usize) -> Num {
    let line = buf.get(start..).unwrap_or_default();
    // Fast path for the usual header: a non-zero first digit, at most 18 digits (no overflow
    // possible), then CRLF. Everything else takes the general path below.
    if let Some(b'1'..=b'9') = line.first() {
        let mut value: u64 = 0;
        let mut i = 0;
        while i < 18 {
            let Some(d) = line
                .get(i)
                .map(|b| b.wrapping_sub(b'0'))
                .filter(|&d| d <= 9)
            else {
                break;
            };
            value = value * 10 + u64::from(d);
            i += 1;
        }
        if line.get(i) == Some(&b'\r') && line.get(i + 1) == Some(&b'\n') {
            return Num::Value(value as i64, start + i + 2);
        }
    }
    line_number_slow(line, start)
}

/// The general case of [`line_number`] on `line = buf[start..]`.
#[cold]
fn line_number_slow(line: &[u8], start: usize) -> Num {
    let Some(cr) = line.iter().take(MAX_INT_LEN + 1).position(|&b| b == b'\r') else {
        return if line.len() > MAX_INT_LEN {
            Num::Invalid
        } else {
            Num::Incomplete
        };
    };
    match line.get(cr + 1) {
        None => Num::Incomplete,
        Some(b'\n') => match string2ll(&line[..cr]) {
            Some(v) => Num::Value(v, start + cr + 2),
            None => Num::Invalid,
        },
        // Redis skips the byte after CR unchecked; a bare CR is refused here instead.
        Some(_) => Num::Invalid,
    }
}

/// `isspace` in the C locale, which `sdssplitargs` uses between arguments.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// The bytes of one inline argument, as long as they stay a contiguous run of the input.
struct ArgRun {
    start: Option<usize>,
    end: usize,
    anchor: usize,
    contiguous: bool,
}

impl ArgRun {
    fn new(anchor: usize) -> Self {
        ArgRun {
            start: None,
            end: anchor,
            anchor,
            contiguous: true,
        }
    }

    /// The argument gains the input byte at `p`.
    fn push(&mut self, p: usize) {
        match self.start {
            None => {
                self.start = Some(p);
                self.end = p + 1;
            }
            Some(_) if self.end == p => self.end += 1,
            Some(_) => self.contiguous = false,
        }
    }

    fn range(&self) -> Range<usize> {
        match self.start {
            Some(s) => s..self.end,
            None => self.anchor..self.anchor,
        }
    }
}

/// Splits an inline line like Redis' `sdssplitargs`: blanks separate arguments, `"..."` and
/// `'...'` quote them, a closing quote must be followed by a blank or the end, and a NUL byte
/// ends the line (the C string ends there). Unbalanced quotes fail like in Redis. An argument
/// whose value differs from a run of input bytes (any backslash escape inside quotes, or a quote
/// in the middle of a word such as `a"b"`) fails with `UnsupportedEscape`, since a span cannot
/// express it; that is only reported when Redis would have accepted the line.
fn split_inline(line: &[u8], spans: &mut Vec<Range<usize>>) -> Result<(), ProtocolError> {
    // Reading past the end yields NUL, as the C code sees the terminator.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut p = 0;
    let mut unsupported = false;
    loop {
        while is_c_space(at(p)) {
            p += 1;
        }
        if at(p) == 0 {
            break;
        }
        let mut arg = ArgRun::new(p);
        let (mut in_dq, mut in_sq) = (false, false);
        loop {
            let c = at(p);
            let mut done = false;
            if in_dq {
                if c == b'\\'
                    && at(p + 1) == b'x'
                    && at(p + 2).is_ascii_hexdigit()
                    && at(p + 3).is_ascii_hexdigit()
                {
                    arg.contiguous = false;
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    arg.contiguous = false;
                    p += 1;
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    done = true;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    arg.push(p);
                }
            } else if in_sq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    arg.contiguous = false;
                    p += 1;
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_c_space(at(p + 1)) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    done = true;
                } else if c == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                } else {
                    arg.push(p);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => {
                        in_dq = true;
                        arg.anchor = p + 1;
                    }
                    b'\'' => {
                        in_sq = true;
                        arg.anchor = p + 1;
                    }
                    _ => arg.push(p),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
            if done {
                break;
            }
        }
        unsupported |= !arg.contiguous;
        spans.push(arg.range());
    }
    if unsupported {
        return Err(ProtocolError::UnsupportedEscape);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
