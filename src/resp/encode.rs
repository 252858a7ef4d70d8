//! Writers of RESP2/RESP3 frames into a `BytesMut`, without allocating beyond the buffer itself.
//!
//! `proto` is the protocol the client negotiated with `HELLO`: 3 writes RESP3 types, any other
//! value writes their RESP2 downgrades.

use std::fmt::Write as _;

use bytes::{BufMut, BytesMut};

/// Writes `*<n>\r\n`.
pub fn array_header(out: &mut BytesMut, n: usize) {
    line_usize(out, b'*', n);
}

/// Writes `$<len>\r\n<data>\r\n`.
pub fn bulk(out: &mut BytesMut, data: &[u8]) {
    out.reserve(data.len() + 25);
    line_usize(out, b'$', data.len());
    out.put_slice(data);
    out.put_slice(b"\r\n");
}

/// Writes `+<s>\r\n`; a CR or LF inside `s` becomes a space, as one line cannot hold them.
pub fn simple(out: &mut BytesMut, s: &str) {
    sanitized_line(out, b'+', s);
}

/// Writes `-<msg>\r\n`. `msg` comes without the leading `-`, e.g. `"ERR foo"`; a CR or LF inside
/// it becomes a space, like Redis does for error replies.
pub fn error(out: &mut BytesMut, msg: &str) {
    sanitized_line(out, b'-', msg);
}

/// Writes `:<n>\r\n`.
pub fn integer(out: &mut BytesMut, n: i64) {
    line_number(out, b':', n < 0, n.unsigned_abs());
}

/// Writes a null bulk string: `$-1\r\n` in RESP2, `_\r\n` in RESP3.
pub fn null(out: &mut BytesMut, proto: u8) {
    out.put_slice(if proto >= 3 { b"_\r\n" } else { b"$-1\r\n" });
}

/// Writes a null array: `*-1\r\n` in RESP2, `_\r\n` in RESP3.
pub fn null_array(out: &mut BytesMut, proto: u8) {
    out.put_slice(if proto >= 3 { b"_\r\n" } else { b"*-1\r\n" });
}

/// Writes a map header for `n_pairs` pairs: `%<n>` in RESP3, a flat array `*<2n>` in RESP2.
pub fn map_header(out: &mut BytesMut, n_pairs: usize, proto: u8) {
    if proto >= 3 {
        line_usize(out, b'%', n_pairs);
    } else {
        line_usize(out, b'*', n_pairs.saturating_mul(2));
    }
}

/// Writes a set header: `~<n>` in RESP3, `*<n>` in RESP2.
pub fn set_header(out: &mut BytesMut, n: usize, proto: u8) {
    line_usize(out, if proto >= 3 { b'~' } else { b'*' }, n);
}

/// Writes a push header: `><n>` in RESP3, `*<n>` in RESP2.
pub fn push_header(out: &mut BytesMut, n: usize, proto: u8) {
    line_usize(out, if proto >= 3 { b'>' } else { b'*' }, n);
}

/// Writes a double: `,<d>\r\n` in RESP3, a bulk string in RESP2, with the text Redis would
/// write (`inf`, `-inf`, `nan`, integers without a fraction, otherwise the shortest form).
pub fn double(out: &mut BytesMut, d: f64, proto: u8) {
    let mut text = DoubleText::default();
    text.format(d);
    let text = text.as_bytes();
    if proto >= 3 {
        out.reserve(text.len() + 3);
        out.put_u8(b',');
        out.put_slice(text);
        out.put_slice(b"\r\n");
    } else {
        bulk(out, text);
    }
}

/// Writes a boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
pub fn boolean(out: &mut BytesMut, b: bool, proto: u8) {
    out.put_slice(match (proto >= 3, b) {
        (true, true) => b"#t\r\n",
        (true, false) => b"#f\r\n",
        (false, true) => b":1\r\n",
        (false, false) => b":0\r\n",
    });
}

/// Writes a verbatim string: `=<len>\r\n<fmt>:<text>\r\n` in RESP3, a bulk of `text` in RESP2.
/// `format` must be three bytes (`txt`, `mkd`); anything else is written as `txt`.
pub fn verbatim(out: &mut BytesMut, format: &str, text: &[u8], proto: u8) {
    if proto < 3 {
        bulk(out, text);
        return;
    }
    let format = if format.len() == 3 { format } else { "txt" };
    out.reserve(text.len() + 30);
    line_usize(out, b'=', text.len() + 4);
    out.put_slice(format.as_bytes());
    out.put_u8(b':');
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

/// Writes a command as a multibulk request: `*<n>` then one bulk per argument.
pub fn command(out: &mut BytesMut, args: &[&[u8]]) {
    let payload: usize = args.iter().map(|a| a.len() + 25).sum();
    out.reserve(payload + 24);
    array_header(out, args.len());
    for arg in args {
        bulk(out, arg);
    }
}

/// Writes `<prefix><n>\r\n`.
fn line_usize(out: &mut BytesMut, prefix: u8, n: usize) {
    line_number(out, prefix, false, n as u64);
}

/// Writes `<prefix>[-]<magnitude>\r\n` from a stack buffer in a single copy.
fn line_number(out: &mut BytesMut, prefix: u8, neg: bool, mut magnitude: u64) {
    // prefix + sign + 20 digits + CRLF.
    let mut buf = [0u8; 24];
    let mut i = buf.len() - 2;
    buf[i] = b'\r';
    buf[i + 1] = b'\n';
    loop {
        i -= 1;
        buf[i] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    i -= 1;
    buf[i] = prefix;
    out.put_slice(&buf[i..]);
}

/// Writes `<prefix><text>\r\n` with CR and LF in `text` turned into spaces.
fn sanitized_line(out: &mut BytesMut, prefix: u8, text: &str) {
    out.reserve(text.len() + 3);
    out.put_u8(prefix);
    let bytes = text.as_bytes();
    if bytes.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(
            bytes
                .iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        out.put_slice(bytes);
    }
    out.put_slice(b"\r\n");
}

/// The text of a double as Redis' `d2string` writes it, built on the stack.
pub(crate) struct DoubleText {
    buf: [u8; 40],
    len: usize,
}

impl Default for DoubleText {
    fn default() -> Self {
        DoubleText {
            buf: [0; 40],
            len: 0,
        }
    }
}

impl std::fmt::Write for DoubleText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl DoubleText {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, bytes: &[u8]) {
        // The buffer holds the longest form (sign, 17 digits, point, exponent), so this always
        // fits; the guard only keeps a logic slip from panicking.
        if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
        }
    }

    /// Redis: `nan`, `inf`/`-inf`, `0`/`-0`, integers up to 2^62 in full, otherwise the
    /// shortest round-trip digits laid out like its `fpconv_dtoa` (plain up to 7 extra zeros,
    /// else `d.ddde+XX`).
    pub(crate) fn format(&mut self, d: f64) {
        self.len = 0;
        if d.is_nan() {
            return self.push(b"nan");
        }
        if d.is_infinite() {
            return self.push(if d < 0.0 { b"-inf" } else { b"inf" });
        }
        if d == 0.0 {
            return self.push(if d.is_sign_negative() { b"-0" } else { b"0" });
        }
        let limit = (i64::MAX / 2) as f64;
        if (-limit..=limit).contains(&d) && d.fract() == 0.0 {
            let _ = write!(self, "{}", d as i64);
            return;
        }
        // Shortest digits and the decimal exponent, from Rust's `{:e}` ("1.2345e-7").
        let mut sci = DoubleText::default();
        let _ = write!(sci, "{:e}", d.abs());
        let sci = sci.as_bytes();
        let e_at = sci.iter().position(|&b| b == b'e').unwrap_or(sci.len());
        let mut digits = [0u8; 20];
        let mut nd = 0;
        for &b in sci[..e_at].iter().filter(|b| b.is_ascii_digit()) {
            if let Some(slot) = digits.get_mut(nd) {
                *slot = b;
                nd += 1;
            }
        }
        let exp10 = std::str::from_utf8(sci.get(e_at + 1..).unwrap_or_default())
            .ok()
            .and_then(|e| e.parse::<i32>().ok())
            .unwrap_or(0);
        if d < 0.0 {
            self.push(b"-");
        }
        self.emit(&digits[..nd], exp10);
    }

    /// Lays out `digits` × 10^(exp10 - len + 1) like `fpconv`'s `emit_digits`.
    fn emit(&mut self, digits: &[u8], exp10: i32) {
        let nd = digits.len() as i32;
        let k = exp10 - (nd - 1);
        let exp = exp10.abs();
        if k >= 0 && exp < nd + 7 {
            self.push(digits);
            (0..k).for_each(|_| self.push(b"0"));
            return;
        }
        if k < 0 && (k > -7 || exp < 4) {
            let offset = nd + k;
            if offset <= 0 {
                self.push(b"0.");
                (0..-offset).for_each(|_| self.push(b"0"));
                self.push(digits);
            } else {
                let (int, frac) = digits.split_at(offset as usize);
                self.push(int);
                self.push(b".");
                self.push(frac);
            }
            return;
        }
        self.push(&digits[..1]);
        if digits.len() > 1 {
            self.push(b".");
            self.push(&digits[1..]);
        }
        self.push(if exp10 < 0 { b"e-" } else { b"e+" });
        let _ = write!(self, "{exp}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
        let mut b = BytesMut::new();
        f(&mut b);
        b.to_vec()
    }

    #[test]
    fn scalars() {
        assert_eq!(out(|o| array_header(o, 0)), b"*0\r\n");
        assert_eq!(out(|o| array_header(o, 123)), b"*123\r\n");
        assert_eq!(out(|o| bulk(o, b"foo")), b"$3\r\nfoo\r\n");
        assert_eq!(out(|o| bulk(o, b"")), b"$0\r\n\r\n");
        assert_eq!(out(|o| simple(o, "OK")), b"+OK\r\n");
        assert_eq!(out(|o| simple(o, "a\r\nb")), b"+a  b\r\n");
        assert_eq!(out(|o| error(o, "ERR bad\nthing")), b"-ERR bad thing\r\n");
        assert_eq!(out(|o| integer(o, 0)), b":0\r\n");
        assert_eq!(out(|o| integer(o, -7)), b":-7\r\n");
        assert_eq!(out(|o| integer(o, i64::MAX)), b":9223372036854775807\r\n");
        assert_eq!(out(|o| integer(o, i64::MIN)), b":-9223372036854775808\r\n");
        assert_eq!(
            out(|o| line_usize(o, b'$', usize::MAX)),
            b"$18446744073709551615\r\n"
        );
    }

    #[test]
    fn proto_dependent_types() {
        assert_eq!(out(|o| null(o, 2)), b"$-1\r\n");
        assert_eq!(out(|o| null(o, 3)), b"_\r\n");
        assert_eq!(out(|o| null_array(o, 2)), b"*-1\r\n");
        assert_eq!(out(|o| null_array(o, 3)), b"_\r\n");
        assert_eq!(out(|o| map_header(o, 2, 2)), b"*4\r\n");
        assert_eq!(out(|o| map_header(o, 2, 3)), b"%2\r\n");
        assert_eq!(out(|o| set_header(o, 2, 2)), b"*2\r\n");
        assert_eq!(out(|o| set_header(o, 2, 3)), b"~2\r\n");
        assert_eq!(out(|o| push_header(o, 3, 2)), b"*3\r\n");
        assert_eq!(out(|o| push_header(o, 3, 3)), b">3\r\n");
        assert_eq!(out(|o| boolean(o, true, 3)), b"#t\r\n");
        assert_eq!(out(|o| boolean(o, false, 3)), b"#f\r\n");
        assert_eq!(out(|o| boolean(o, true, 2)), b":1\r\n");
        assert_eq!(out(|o| boolean(o, false, 2)), b":0\r\n");
        assert_eq!(out(|o| verbatim(o, "txt", b"hi", 3)), b"=6\r\ntxt:hi\r\n");
        assert_eq!(
            out(|o| verbatim(o, "markdown", b"hi", 3)),
            b"=6\r\ntxt:hi\r\n"
        );
        assert_eq!(out(|o| verbatim(o, "mkd", b"hi", 2)), b"$2\r\nhi\r\n");
        assert_eq!(out(|o| double(o, 1.5, 3)), b",1.5\r\n");
        assert_eq!(out(|o| double(o, 1.5, 2)), b"$3\r\n1.5\r\n");
    }

    fn text(d: f64) -> String {
        let mut t = DoubleText::default();
        t.format(d);
        String::from_utf8(t.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn doubles_like_redis() {
        let cases: &[(f64, &str)] = &[
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (0.0, "0"),
            (-0.0, "-0"),
            (10.0, "10"),
            (-3.0, "-3"),
            (1e17, "100000000000000000"),
            (1.5, "1.5"),
            (-0.25, "-0.25"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (1e-7, "1e-7"),
            (1.25e-10, "1.25e-10"),
            (123456.789, "123456.789"),
            (std::f64::consts::PI, "3.141592653589793"),
            (1e20, "1e+20"),
            (1.5e20, "1.5e+20"),
            (9.223372036854776e18, "9223372036854776000"),
            (1e300, "1e+300"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
        ];
        for &(d, want) in cases {
            assert_eq!(text(d), want, "{d:e}");
        }
    }

    #[test]
    fn commands() {
        assert_eq!(
            out(|o| command(o, &[b"SET", b"k", b""])),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
        );
        assert_eq!(out(|o| command(o, &[])), b"*0\r\n");
    }
}
