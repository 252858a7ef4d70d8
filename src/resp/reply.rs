//! Reply scanner: finds where one RESP2/RESP3 backend reply ends without decoding it, splits an
//! array reply into its elements, and recognises cluster redirections.

use std::ops::Range;

use super::ProtocolError;
use super::int::{MAX_INT_LEN, string2ll};

/// Nesting levels kept without touching the heap; deeper replies spill into a `Vec`.
const INLINE_FRAMES: usize = 8;

/// One open aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// `left` elements still to come; `attr` marks an attribute map, which is not itself a value
    /// and so does not count as an element of its parent.
    Counted { left: u64, attr: bool },
    /// A streamed aggregate (`*?`, `%?`, `~?`) that ends with `.\r\n`.
    Streamed,
}

/// A stack of open aggregates whose first levels live inline.
#[derive(Debug, Clone)]
struct Stack {
    inline: [Frame; INLINE_FRAMES],
    spill: Vec<Frame>,
    len: usize,
}

impl Stack {
    fn new() -> Self {
        Stack {
            inline: [Frame::Streamed; INLINE_FRAMES],
            spill: Vec::new(),
            len: 0,
        }
    }

    fn push(&mut self, frame: Frame) {
        if self.len < INLINE_FRAMES {
            self.inline[self.len] = frame;
        } else {
            self.spill.push(frame);
        }
        self.len += 1;
    }

    fn pop(&mut self) {
        if self.len > INLINE_FRAMES {
            self.spill.pop();
        }
        self.len = self.len.saturating_sub(1);
    }

    fn top_mut(&mut self) -> Option<&mut Frame> {
        match self.len {
            0 => None,
            n if n <= INLINE_FRAMES => self.inline.get_mut(n - 1),
            _ => self.spill.last_mut(),
        }
    }

    fn top_is_streamed(&self) -> bool {
        let top = match self.len {
            0 => None,
            n if n <= INLINE_FRAMES => self.inline.get(n - 1),
            _ => self.spill.last(),
        };
        top == Some(&Frame::Streamed)
    }

    fn clear(&mut self) {
        self.spill.clear();
        self.len = 0;
    }
}

/// Where the scanner stands inside the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// At the type byte of a new item, at `pos`.
    Item,
    /// Inside a one-line item that started at `pos`; no `\n` before `scan`.
    Line { scan: usize },
    /// Blob bytes from `pos` to `end`, then CRLF; `chunk` when part of a streamed string.
    Payload { end: usize, chunk: bool },
    /// At a `;<len>` chunk header of a streamed string, at `pos`.
    Chunk,
}

/// A resumable reply scanner; one lives in every backend connection.
#[derive(Debug, Clone)]
pub struct ReplyScanner {
    max_depth: usize,
    pos: usize,
    phase: Phase,
    stack: Stack,
}

/// What finishing one value did to the reply.
enum Finished {
    Reply,
    More,
}

impl ReplyScanner {
    /// A scanner refusing replies nested deeper than `max_depth` aggregates.
    pub fn new(max_depth: usize) -> Self {
        ReplyScanner {
            max_depth,
            pos: 0,
            phase: Phase::Item,
            stack: Stack::new(),
        }
    }

    /// Scans the reply at the start of `buf`. `buf` must start at the reply's first byte and may
    /// only grow between calls that return `Ok(None)`; each call resumes where the last stopped.
    /// `Some(len)` means the reply is `buf[..len]`; the scanner then resets for the next reply, as
    /// it also does after an error.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        let result = self.run(buf);
        if !matches!(result, Ok(None)) {
            self.pos = 0;
            self.phase = Phase::Item;
            self.stack.clear();
        }
        result
    }

    fn run(&mut self, buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
        loop {
            match self.phase {
                Phase::Item => {
                    let Some(&t) = buf.get(self.pos) else {
                        return Ok(None);
                    };
                    match t {
                        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => {
                            self.phase = Phase::Line { scan: self.pos + 1 };
                            continue;
                        }
                        b'$' | b'!' | b'=' => {
                            let Some((len, next)) = header(buf, self.pos + 1, "blob length")?
                            else {
                                return Ok(None);
                            };
                            match len {
                                Len::Stream if t == b'$' => {
                                    self.pos = next;
                                    self.phase = Phase::Chunk;
                                }
                                Len::Count(-1) if t == b'$' => {
                                    self.pos = next;
                                    if let Finished::Reply = self.finish_value() {
                                        return Ok(Some(self.pos));
                                    }
                                }
                                Len::Count(n) if n >= 0 => {
                                    let end = blob_end(next, n)?;
                                    self.pos = next;
                                    // Usually the payload is already here: finish it at once.
                                    match buf.get(end..end + 2) {
                                        Some(b"\r\n") => {
                                            self.pos = end + 2;
                                            if let Finished::Reply = self.finish_value() {
                                                return Ok(Some(self.pos));
                                            }
                                        }
                                        Some(_) => return Err(ProtocolError::MissingCrlf),
                                        None => {
                                            self.phase = Phase::Payload { end, chunk: false };
                                            return Ok(None);
                                        }
                                    }
                                }
                                _ => return Err(ProtocolError::MalformedLine("blob length")),
                            }
                        }
                        b'*' | b'%' | b'~' | b'>' | b'|' => {
                            let Some((len, next)) = header(buf, self.pos + 1, "aggregate length")?
                            else {
                                return Ok(None);
                            };
                            self.pos = next;
                            if let Finished::Reply = self.open_aggregate(t, len)? {
                                return Ok(Some(self.pos));
                            }
                        }
                        b'.' if self.stack.top_is_streamed() => {
                            match buf.get(self.pos + 1..self.pos + 3) {
                                None => return Ok(None),
                                Some(b"\r\n") => {}
                                Some(_) => return Err(ProtocolError::MalformedLine("end")),
                            }
                            self.pos += 3;
                            self.stack.pop();
                            if let Finished::Reply = self.finish_value() {
                                return Ok(Some(self.pos));
                            }
                        }
                        _ => return Err(ProtocolError::InvalidType(t)),
                    }
                }
                Phase::Line { scan } => {
                    let found = buf
                        .get(scan..)
                        .and_then(|rest| rest.iter().position(|&b| b == b'\n'));
                    let Some(nl) = found.map(|i| scan + i) else {
                        self.phase = Phase::Line {
                            scan: buf.len().max(scan),
                        };
                        return Ok(None);
                    };
                    // The CR must follow the type byte, not be it.
                    if nl < self.pos + 2 || buf[nl - 1] != b'\r' {
                        return Err(ProtocolError::MalformedLine("simple"));
                    }
                    self.pos = nl + 1;
                    self.phase = Phase::Item;
                    if let Finished::Reply = self.finish_value() {
                        return Ok(Some(self.pos));
                    }
                }
                Phase::Payload { end, chunk } => {
                    if buf.len().saturating_sub(2) < end {
                        return Ok(None);
                    }
                    if &buf[end..end + 2] != b"\r\n" {
                        return Err(ProtocolError::MissingCrlf);
                    }
                    self.pos = end + 2;
                    if chunk {
                        self.phase = Phase::Chunk;
                    } else {
                        self.phase = Phase::Item;
                        if let Finished::Reply = self.finish_value() {
                            return Ok(Some(self.pos));
                        }
                    }
                }
                Phase::Chunk => {
                    match buf.get(self.pos) {
                        None => return Ok(None),
                        Some(b';') => {}
                        Some(_) => return Err(ProtocolError::MalformedLine("chunk")),
                    }
                    let Some((len, next)) = header(buf, self.pos + 1, "chunk length")? else {
                        return Ok(None);
                    };
                    self.pos = next;
                    match len {
                        Len::Count(0) => {
                            self.phase = Phase::Item;
                            if let Finished::Reply = self.finish_value() {
                                return Ok(Some(self.pos));
                            }
                        }
                        Len::Count(n) if n > 0 => {
                            self.phase = Phase::Payload {
                                end: blob_end(next, n)?,
                                chunk: true,
                            };
                        }
                        _ => return Err(ProtocolError::MalformedLine("chunk length")),
                    }
                }
            }
        }
    }

    /// Handles an aggregate header of type `t`; `pos` is already past it.
    fn open_aggregate(&mut self, t: u8, len: Len) -> Result<Finished, ProtocolError> {
        let frame = match len {
            Len::Stream if matches!(t, b'*' | b'%' | b'~') => Frame::Streamed,
            Len::Count(-1) if t == b'*' => return Ok(self.finish_value()),
            Len::Count(0) if t == b'|' => return Ok(Finished::More),
            Len::Count(0) => return Ok(self.finish_value()),
            Len::Count(n) if n > 0 => {
                let n = n.unsigned_abs();
                let pairs = matches!(t, b'%' | b'|');
                Frame::Counted {
                    left: if pairs { n * 2 } else { n },
                    attr: t == b'|',
                }
            }
            _ => return Err(ProtocolError::MalformedLine("aggregate length")),
        };
        if self.stack.len >= self.max_depth {
            return Err(ProtocolError::TooDeep(self.max_depth));
        }
        self.stack.push(frame);
        Ok(Finished::More)
    }

    /// Accounts for one finished value in the aggregates that contain it.
    fn finish_value(&mut self) -> Finished {
        loop {
            match self.stack.top_mut() {
                None => return Finished::Reply,
                Some(Frame::Streamed) => return Finished::More,
                Some(Frame::Counted { left, attr }) => {
                    *left -= 1;
                    if *left > 0 {
                        return Finished::More;
                    }
                    let attr = *attr;
                    self.stack.pop();
                    // A finished attribute is not a value: its parent still waits for one.
                    if attr {
                        return Finished::More;
                    }
                }
            }
        }
    }
}

/// Scans one reply at the start of `buf` with a fresh scanner (see [`ReplyScanner::scan`]).
pub fn scan_reply(buf: &[u8], max_depth: usize) -> Result<Option<usize>, ProtocolError> {
    ReplyScanner::new(max_depth).scan(buf)
}

/// A length header: a count (possibly -1 for a null) or `?` for a streamed value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Len {
    Count(i64),
    Stream,
}

/// Reads a length header from `buf[start..]` up to `\r\n`: `?`, or an integer in Redis' own
/// syntax ([`string2ll`]), the only one Redis writes and hiredis reads. `what` names the line in
/// errors.
///
/// Always inlined: every `$`, `*` and `;` line goes through it, and with the leading-zero rule
/// LLVM stopped inlining it into the scanner on its own (about 7 more instructions a header).
#[inline(always)]
pub(crate) fn header(
    buf: &[u8],
    start: usize,
    what: &'static str,
) -> Result<Option<(Len, usize)>, ProtocolError> {
    // Fast path for the usual header: up to 18 digits (no overflow possible), no leading zero
    // unless the number is 0 itself, then CRLF. Everything else takes the general path.
    let digits = buf.get(start..).unwrap_or_default();
    // The null (`$-1`, `*-1`): every GET of a missing key.
    if digits.starts_with(b"-1\r\n") {
        return Ok(Some((Len::Count(-1), start + 4)));
    }
    let mut value: u64 = 0;
    let mut i = 0;
    while i < 18 {
        let Some(d) = digits
            .get(i)
            .map(|b| b.wrapping_sub(b'0'))
            .filter(|&d| d <= 9)
        else {
            break;
        };
        value = value * 10 + u64::from(d);
        i += 1;
    }
    // A leading 0 is only valid as the whole number.
    let canonical = i == 1 || digits.first() != Some(&b'0');
    if i > 0 && canonical && digits.get(i) == Some(&b'\r') && digits.get(i + 1) == Some(&b'\n') {
        return Ok(Some((Len::Count(value as i64), start + i + 2)));
    }
    header_slow(buf, start, what)
}

/// The general case of [`header`]: signs, `?`, incomplete and malformed lines.
#[cold]
fn header_slow(
    buf: &[u8],
    start: usize,
    what: &'static str,
) -> Result<Option<(Len, usize)>, ProtocolError> {
    let bad = ProtocolError::MalformedLine(what);
    let line = buf.get(start..).unwrap_or_default();
    let Some(cr) = line.iter().take(MAX_INT_LEN + 1).position(|&b| b == b'\r') else {
        return if line.len() > MAX_INT_LEN {
            Err(bad)
        } else {
            Ok(None)
        };
    };
    match line.get(cr + 1) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(bad),
    }
    let text = &line[..cr];
    let len = if text == b"?" {
        Len::Stream
    } else {
        Len::Count(string2ll(text).ok_or(bad)?)
    };
    Ok(Some((len, start + cr + 2)))
}

/// End offset of an `n`-byte payload starting at `start`.
fn blob_end(start: usize, n: i64) -> Result<usize, ProtocolError> {
    usize::try_from(n)
        .ok()
        .and_then(|n| start.checked_add(n))
        .filter(|end| end.checked_add(2).is_some())
        .ok_or(ProtocolError::MalformedLine("blob length"))
}

/// For a complete reply that is an array, set or push (`*`, `~`, `>`, counted or streamed,
/// possibly after attributes), the byte range of each element within `reply`; each range holds
/// the element with any attribute in front of it. `None` when the reply is anything else (a
/// scalar, an error, a map, the null array `*-1`). A reply cut short is `Truncated`.
pub fn aggregate_elements(
    reply: &[u8],
    max_depth: usize,
) -> Result<Option<Vec<Range<usize>>>, ProtocolError> {
    let mut pos = 0;
    let (t, len) = loop {
        let Some(&t) = reply.get(pos) else {
            return Err(ProtocolError::Truncated);
        };
        if !matches!(t, b'*' | b'~' | b'>' | b'|') {
            return Ok(None);
        }
        let (len, next) =
            header(reply, pos + 1, "aggregate length")?.ok_or(ProtocolError::Truncated)?;
        pos = next;
        if t != b'|' {
            break (t, len);
        }
        // Attributes in front of the reply are skipped, with the depth rules of the scanner.
        let Len::Count(pairs @ 0..) = len else {
            return Err(ProtocolError::MalformedLine("aggregate length"));
        };
        for _ in 0..pairs.unsigned_abs().saturating_mul(2) {
            pos += element_len(reply, pos, max_depth)?;
        }
    };
    let mut ranges = Vec::new();
    match len {
        Len::Count(-1) if t == b'*' => return Ok(None),
        Len::Count(n @ 0..) => {
            // The count is not trusted for the allocation: an element takes at least 3 bytes.
            let fit = reply.len().saturating_sub(pos) / 3;
            ranges.reserve(usize::try_from(n).map_or(fit, |n| n.min(fit)));
            for _ in 0..n {
                let len = element_len(reply, pos, max_depth)?;
                ranges.push(pos..pos + len);
                pos += len;
            }
        }
        Len::Stream if t != b'>' => loop {
            match reply.get(pos..pos + 3) {
                Some(b".\r\n") => break,
                Some(_) => {}
                None => return Err(ProtocolError::Truncated),
            }
            let len = element_len(reply, pos, max_depth)?;
            ranges.push(pos..pos + len);
            pos += len;
        },
        _ => return Err(ProtocolError::MalformedLine("aggregate length")),
    }
    Ok(Some(ranges))
}

/// Length of the element at `reply[pos..]`, inside an aggregate of a reply limited to
/// `max_depth` levels; errors speak of the whole reply's limit, as the scanner's would.
fn element_len(reply: &[u8], pos: usize, max_depth: usize) -> Result<usize, ProtocolError> {
    let too_deep = ProtocolError::TooDeep(max_depth);
    let inner = max_depth.checked_sub(1).ok_or(too_deep.clone())?;
    let rest = reply.get(pos..).ok_or(ProtocolError::Truncated)?;
    match scan_reply(rest, inner) {
        Ok(Some(len)) => Ok(len),
        Ok(None) => Err(ProtocolError::Truncated),
        Err(ProtocolError::TooDeep(_)) => Err(too_deep),
        Err(e) => Err(e),
    }
}

/// True when `reply` is an error: a simple error `-...` or a blob error `!...`.
pub fn is_error(reply: &[u8]) -> bool {
    matches!(reply.first(), Some(b'-' | b'!'))
}

/// A cluster redirection carried by an error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirect<'a> {
    /// `-MOVED <slot> <addr>`: the slot now lives at `addr` for good.
    Moved { slot: u16, addr: &'a str },
    /// `-ASK <slot> <addr>`: ask `addr` once, preceded by `ASKING`.
    Ask { slot: u16, addr: &'a str },
}

/// Recognises `-MOVED 3999 127.0.0.1:6381\r\n` and `-ASK 3999 127.0.0.1:6381\r\n`. The address is
/// returned as written; it may be `:6381` (empty host: same host as the node that answered) or a
/// hostname, which the caller resolves. `None` for anything else, including a slot out of range.
pub fn parse_redirect(reply: &[u8]) -> Option<Redirect<'_>> {
    let (ask, rest) = if let Some(rest) = reply.strip_prefix(b"-MOVED ") {
        (false, rest)
    } else {
        (true, reply.strip_prefix(b"-ASK ")?)
    };
    let line = match rest.iter().position(|&b| b == b'\r') {
        Some(cr) => &rest[..cr],
        None => rest,
    };
    let space = line.iter().position(|&b| b == b' ')?;
    let slot = string2ll(&line[..space])
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&s| s < 16384)?;
    let addr = std::str::from_utf8(&line[space + 1..]).ok()?;
    if addr.is_empty() || addr.contains([' ', '\n']) {
        return None;
    }
    Some(if ask {
        Redirect::Ask { slot, addr }
    } else {
        Redirect::Moved { slot, addr }
    })
}

#[cfg(test)]
pub(crate) mod tests;
