//! An owned RESP value, decoded only on the control plane (CLUSTER SLOTS, COMMAND INFO, INFO,
//! HELLO replies). The data path never builds these.

use bytes::{Bytes, BytesMut};

use super::ProtocolError;
use super::encode;
use super::int::string2ll;
use super::reply::{Len, header};

/// One decoded RESP2/RESP3 value. A null of any kind (`$-1`, `*-1`, `_`) decodes to `Nil`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Bytes),
    Nil,
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Set(Vec<Value>),
    Double(f64),
    Boolean(bool),
    BigNumber(String),
    Verbatim { format: String, text: Bytes },
    Push(Vec<Value>),
}

/// Decodes the reply at the start of `buf`: `Ok(None)` while incomplete, else the value and the
/// number of bytes it took. Attributes are read and dropped; streamed strings and aggregates are
/// gathered. Framing and depth rules are those of [`super::reply::scan_reply`], which accepts
/// every reply this accepts, with the same length; this is stricter about contents: integers,
/// doubles, booleans, nulls, verbatim headers and map sizes must be well formed. Text types are
/// decoded as lossy UTF-8. Recursion is bounded by `max_depth`.
pub fn decode(buf: &[u8], max_depth: usize) -> Result<Option<(Value, usize)>, ProtocolError> {
    Decoder { buf, max_depth }.value(0, 0)
}

/// Recursive descent over one buffer; `depth` is the number of open aggregates.
struct Decoder<'a> {
    buf: &'a [u8],
    max_depth: usize,
}

type Step = Result<Option<(Value, usize)>, ProtocolError>;

impl Decoder<'_> {
    /// Decodes the value at `pos`, skipping any attributes in front of it.
    fn value(&mut self, mut pos: usize, depth: usize) -> Step {
        loop {
            let Some(&t) = self.buf.get(pos) else {
                return Ok(None);
            };
            if t != b'|' {
                return self.plain(pos, depth);
            }
            let Some((len, next)) = header(self.buf, pos + 1, "aggregate length")? else {
                return Ok(None);
            };
            let Len::Count(pairs @ 0..) = len else {
                return Err(ProtocolError::MalformedLine("aggregate length"));
            };
            let Some((_, end)) = self.elements(next, depth, Some(pairs), 2)? else {
                return Ok(None);
            };
            pos = end;
        }
    }

    fn plain(&mut self, pos: usize, depth: usize) -> Step {
        let t = self.buf[pos];
        match t {
            b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => {
                let Some((line, end)) = self.line(pos)? else {
                    return Ok(None);
                };
                let text = || String::from_utf8_lossy(line).into_owned();
                let bad = |what| ProtocolError::MalformedLine(what);
                let value = match t {
                    b'+' => Value::Simple(text()),
                    b'-' => Value::Error(text()),
                    b':' => Value::Integer(string2ll(line).ok_or(bad("integer"))?),
                    b'_' if line.is_empty() => Value::Nil,
                    b'_' => return Err(bad("null")),
                    b'#' => match line {
                        b"t" => Value::Boolean(true),
                        b"f" => Value::Boolean(false),
                        _ => return Err(bad("boolean")),
                    },
                    b',' => Value::Double(parse_double(line).ok_or(bad("double"))?),
                    _ => Value::BigNumber(text()),
                };
                Ok(Some((value, end)))
            }
            b'$' | b'!' | b'=' => self.blob(t, pos),
            b'*' | b'%' | b'~' | b'>' => {
                let Some((len, next)) = header(self.buf, pos + 1, "aggregate length")? else {
                    return Ok(None);
                };
                let count = match len {
                    Len::Stream if matches!(t, b'*' | b'%' | b'~') => None,
                    Len::Count(-1) if t == b'*' => return Ok(Some((Value::Nil, next))),
                    Len::Count(n @ 0..) => Some(n),
                    _ => return Err(ProtocolError::MalformedLine("aggregate length")),
                };
                let per_entry = if t == b'%' { 2 } else { 1 };
                let Some((items, end)) = self.elements(next, depth, count, per_entry)? else {
                    return Ok(None);
                };
                let value = match t {
                    b'*' => Value::Array(items),
                    b'~' => Value::Set(items),
                    b'>' => Value::Push(items),
                    _ => {
                        if items.len() % 2 != 0 {
                            return Err(ProtocolError::MalformedLine("map"));
                        }
                        let mut pairs = Vec::with_capacity(items.len() / 2);
                        let mut it = items.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            pairs.push((k, v));
                        }
                        Value::Map(pairs)
                    }
                };
                Ok(Some((value, end)))
            }
            _ => Err(ProtocolError::InvalidType(t)),
        }
    }

    /// The content of the line starting with the type byte at `pos`, and the offset past it.
    fn line(&self, pos: usize) -> Result<Option<(&[u8], usize)>, ProtocolError> {
        let rest = &self.buf[pos + 1..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        if nl == 0 || rest[nl - 1] != b'\r' {
            return Err(ProtocolError::MalformedLine("simple"));
        }
        Ok(Some((&rest[..nl - 1], pos + 1 + nl + 1)))
    }

    /// `$`, `!` and `=` values, including streamed strings.
    fn blob(&self, t: u8, pos: usize) -> Step {
        let bad = || ProtocolError::MalformedLine("blob length");
        let Some((len, next)) = header(self.buf, pos + 1, "blob length")? else {
            return Ok(None);
        };
        let n = match len {
            Len::Count(-1) if t == b'$' => return Ok(Some((Value::Nil, next))),
            Len::Stream if t == b'$' => return self.streamed_blob(next),
            Len::Count(n @ 0..) => n,
            _ => return Err(bad()),
        };
        let Some((data, end)) = self.payload(next, n)? else {
            return Ok(None);
        };
        let value = match (t, data) {
            (b'$', _) => Value::Bulk(Bytes::copy_from_slice(data)),
            (b'!', _) => Value::Error(String::from_utf8_lossy(data).into_owned()),
            (_, [a, b, c, b':', text @ ..]) => Value::Verbatim {
                format: String::from_utf8_lossy(&[*a, *b, *c]).into_owned(),
                text: Bytes::copy_from_slice(text),
            },
            _ => return Err(ProtocolError::MalformedLine("verbatim")),
        };
        Ok(Some((value, end)))
    }

    /// The `;<len>` chunks of a `$?` string, up to the final `;0`.
    fn streamed_blob(&self, mut pos: usize) -> Step {
        let mut data = Vec::new();
        loop {
            match self.buf.get(pos) {
                None => return Ok(None),
                Some(b';') => {}
                Some(_) => return Err(ProtocolError::MalformedLine("chunk")),
            }
            let Some((len, next)) = header(self.buf, pos + 1, "chunk length")? else {
                return Ok(None);
            };
            match len {
                Len::Count(0) => return Ok(Some((Value::Bulk(data.into()), next))),
                Len::Count(n @ 1..) => {
                    let Some((chunk, end)) = self.payload(next, n)? else {
                        return Ok(None);
                    };
                    data.extend_from_slice(chunk);
                    pos = end;
                }
                _ => return Err(ProtocolError::MalformedLine("chunk length")),
            }
        }
    }

    /// `n` payload bytes at `start` followed by CRLF.
    fn payload(&self, start: usize, n: i64) -> Result<Option<(&[u8], usize)>, ProtocolError> {
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| start.checked_add(n))
            .filter(|end| end.checked_add(2).is_some())
            .ok_or(ProtocolError::MalformedLine("blob length"))?;
        if self.buf.len().saturating_sub(2) < end {
            return Ok(None);
        }
        if &self.buf[end..end + 2] != b"\r\n" {
            return Err(ProtocolError::MissingCrlf);
        }
        Ok(Some((&self.buf[start..end], end + 2)))
    }

    /// `count × per_entry` values at `pos` (or, for `None`, values up to `.\r\n`) inside a new
    /// aggregate opened at `depth`.
    fn elements(
        &mut self,
        mut pos: usize,
        depth: usize,
        count: Option<i64>,
        per_entry: u64,
    ) -> Result<Option<(Vec<Value>, usize)>, ProtocolError> {
        let total = count.map(|n| n.unsigned_abs().saturating_mul(per_entry));
        if total == Some(0) {
            return Ok(Some((Vec::new(), pos)));
        }
        if depth >= self.max_depth {
            return Err(ProtocolError::TooDeep(self.max_depth));
        }
        let mut items = Vec::new();
        loop {
            if let Some(total) = total {
                if items.len() as u64 == total {
                    break;
                }
            } else {
                match self.buf.get(pos) {
                    None => return Ok(None),
                    Some(b'.') => match self.buf.get(pos + 1..pos + 3) {
                        None => return Ok(None),
                        Some(b"\r\n") => {
                            pos += 3;
                            break;
                        }
                        Some(_) => return Err(ProtocolError::MalformedLine("end")),
                    },
                    Some(_) => {}
                }
            }
            let Some((item, end)) = self.value(pos, depth + 1)? else {
                return Ok(None);
            };
            items.push(item);
            pos = end;
        }
        Ok(Some((items, pos)))
    }
}

/// Parses a RESP3 double: decimal or exponent notation, `inf`, `-inf`, `nan`.
fn parse_double(line: &[u8]) -> Option<f64> {
    std::str::from_utf8(line).ok()?.parse().ok()
}

impl Value {
    /// The bytes of a bulk string, simple string or verbatim text.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bulk(b) => Some(b),
            Value::Simple(s) => Some(s.as_bytes()),
            Value::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }

    /// [`Value::as_bytes`] when it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()?).ok()
    }

    /// An integer, or a bulk/simple string holding one (Redis' strict integer syntax).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            Value::Bulk(_) | Value::Simple(_) => string2ll(self.as_bytes()?),
            _ => None,
        }
    }

    /// The elements of an array, set or push.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) | Value::Set(v) | Value::Push(v) => Some(v),
            _ => None,
        }
    }

    /// Writes the value in RESP3 (`proto` 3) or downgraded to RESP2 (any other `proto`): maps
    /// become flat arrays, sets and pushes arrays, doubles and big numbers bulk strings,
    /// booleans integers 1/0, verbatim strings a bulk of their text, `Nil` `$-1`.
    pub fn encode(&self, out: &mut BytesMut, proto: u8) {
        let resp3 = proto >= 3;
        match self {
            Value::Simple(s) => encode::simple(out, s),
            Value::Error(s) => encode::error(out, s),
            Value::Integer(i) => encode::integer(out, *i),
            Value::Bulk(b) => encode::bulk(out, b),
            Value::Nil => encode::null(out, proto),
            Value::Array(items) => {
                encode::array_header(out, items.len());
                items.iter().for_each(|v| v.encode(out, proto));
            }
            Value::Set(items) => {
                encode::set_header(out, items.len(), proto);
                items.iter().for_each(|v| v.encode(out, proto));
            }
            Value::Push(items) => {
                encode::push_header(out, items.len(), proto);
                items.iter().for_each(|v| v.encode(out, proto));
            }
            Value::Map(pairs) => {
                encode::map_header(out, pairs.len(), proto);
                for (k, v) in pairs {
                    k.encode(out, proto);
                    v.encode(out, proto);
                }
            }
            Value::Double(d) => encode::double(out, *d, proto),
            Value::Boolean(b) => encode::boolean(out, *b, proto),
            Value::BigNumber(n) if resp3 => {
                out.extend_from_slice(b"(");
                out.extend_from_slice(n.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Value::BigNumber(n) => encode::bulk(out, n.as_bytes()),
            Value::Verbatim { format, text } => encode::verbatim(out, format, text, proto),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::reply::scan_reply;

    fn dec(buf: &[u8]) -> Value {
        let (v, n) = decode(buf, 128).unwrap().unwrap();
        assert_eq!(n, buf.len(), "{buf:?}");
        v
    }

    fn bulk(s: &str) -> Value {
        Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn simple(s: &str) -> Value {
        Value::Simple(s.into())
    }

    #[test]
    fn every_type() {
        assert_eq!(dec(b"+OK\r\n"), simple("OK"));
        assert_eq!(dec(b"-ERR x\r\n"), Value::Error("ERR x".into()));
        assert_eq!(dec(b":-5\r\n"), Value::Integer(-5));
        assert_eq!(dec(b"$3\r\nfoo\r\n"), bulk("foo"));
        assert_eq!(dec(b"$-1\r\n"), Value::Nil);
        assert_eq!(dec(b"*-1\r\n"), Value::Nil);
        assert_eq!(dec(b"_\r\n"), Value::Nil);
        assert_eq!(dec(b"#t\r\n"), Value::Boolean(true));
        assert_eq!(dec(b"#f\r\n"), Value::Boolean(false));
        assert_eq!(dec(b",1.5\r\n"), Value::Double(1.5));
        assert_eq!(dec(b",-inf\r\n"), Value::Double(f64::NEG_INFINITY));
        assert!(matches!(dec(b",nan\r\n"), Value::Double(d) if d.is_nan()));
        assert_eq!(
            dec(b"(12345678901234567890\r\n"),
            Value::BigNumber("12345678901234567890".into())
        );
        assert_eq!(
            dec(b"!8\r\nERR a\r\nb\r\n"),
            Value::Error("ERR a\r\nb".into())
        );
        assert_eq!(
            dec(b"=8\r\nmkd:# hi\r\n"),
            Value::Verbatim {
                format: "mkd".into(),
                text: Bytes::from_static(b"# hi")
            }
        );
        assert_eq!(
            dec(b"*3\r\n:1\r\n*1\r\n+a\r\n$-1\r\n"),
            Value::Array(vec![
                Value::Integer(1),
                Value::Array(vec![simple("a")]),
                Value::Nil
            ])
        );
        assert_eq!(
            dec(b"%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n"),
            Value::Map(vec![
                (simple("a"), Value::Integer(1)),
                (simple("b"), Value::Integer(2))
            ])
        );
        assert_eq!(dec(b"~1\r\n+a\r\n"), Value::Set(vec![simple("a")]));
        assert_eq!(
            dec(b">2\r\n+a\r\n+b\r\n"),
            Value::Push(vec![simple("a"), simple("b")])
        );
    }

    #[test]
    fn attributes_and_streams() {
        assert_eq!(dec(b"|1\r\n+k\r\n+v\r\n:5\r\n"), Value::Integer(5));
        assert_eq!(
            dec(b"*2\r\n|1\r\n+k\r\n*1\r\n+v\r\n:1\r\n:2\r\n"),
            Value::Array(vec![Value::Integer(1), Value::Integer(2)])
        );
        assert_eq!(dec(b"|0\r\n|0\r\n+x\r\n"), simple("x"));
        assert_eq!(dec(b"$?\r\n;2\r\nab\r\n;1\r\nc\r\n;0\r\n"), bulk("abc"));
        assert_eq!(
            dec(b"*?\r\n:1\r\n.\r\n"),
            Value::Array(vec![Value::Integer(1)])
        );
        assert_eq!(
            dec(b"%?\r\n+a\r\n:1\r\n.\r\n"),
            Value::Map(vec![(simple("a"), Value::Integer(1))])
        );
        assert_eq!(dec(b"~?\r\n.\r\n"), Value::Set(vec![]));
    }

    #[test]
    fn errors_and_incomplete() {
        use ProtocolError::*;
        let cases: &[(&[u8], ProtocolError)] = &[
            (b":x\r\n", MalformedLine("integer")),
            (b":+1\r\n", MalformedLine("integer")),
            (b":007\r\n", MalformedLine("integer")),
            (b":-0\r\n", MalformedLine("integer")),
            (b"#x\r\n", MalformedLine("boolean")),
            (b",abc\r\n", MalformedLine("double")),
            (b"_x\r\n", MalformedLine("null")),
            (b"=3\r\ntxt\r\n", MalformedLine("verbatim")),
            (b"%?\r\n+a\r\n.\r\n", MalformedLine("map")),
            (b"@\r\n", InvalidType(b'@')),
            (b"$3\r\nfoox\r\n", MissingCrlf),
            (b"*1\r\n*1\r\n:1\r\n", TooDeep(1)),
        ];
        for (buf, want) in cases {
            assert_eq!(decode(buf, 1).as_ref().map(|_| ()), Err(want), "{buf:?}");
        }
        let full = b"*2\r\n$?\r\n;1\r\na\r\n;0\r\n%1\r\n+k\r\n|1\r\n+a\r\n+b\r\n:1\r\n";
        for cut in 0..full.len() {
            assert_eq!(decode(&full[..cut], 8), Ok(None), "cut {cut}");
        }
        assert!(decode(full, 8).unwrap().is_some());
    }

    #[test]
    fn decode_agrees_with_scan() {
        for reply in crate::resp::reply::tests::REPLIES {
            for depth in [0, 1, 2, 128] {
                let decoded = decode(reply, depth);
                let scanned = scan_reply(reply, depth);
                if let Ok(Some((_, n))) = decoded {
                    assert_eq!(scanned, Ok(Some(n)), "{reply:?}");
                }
                if let Err(ProtocolError::TooDeep(_)) = scanned {
                    assert_eq!(decoded.map(|_| ()), Err(ProtocolError::TooDeep(depth)));
                }
            }
        }
    }

    #[test]
    fn accessors() {
        assert_eq!(bulk("ab").as_bytes(), Some(&b"ab"[..]));
        assert_eq!(simple("ab").as_str(), Some("ab"));
        let verbatim = Value::Verbatim {
            format: "txt".into(),
            text: Bytes::from_static(b"t"),
        };
        assert_eq!(verbatim.as_str(), Some("t"));
        assert_eq!(Value::Bulk(Bytes::from_static(b"\xff")).as_str(), None);
        assert_eq!(Value::Integer(3).as_bytes(), None);
        assert_eq!(Value::Integer(3).as_int(), Some(3));
        assert_eq!(bulk("-12").as_int(), Some(-12));
        assert_eq!(simple("7").as_int(), Some(7));
        assert_eq!(bulk("07").as_int(), None);
        assert_eq!(bulk("123456789012345678901234").as_int(), None);
        assert_eq!(Value::Nil.as_int(), None);
        let items = vec![Value::Integer(1)];
        assert_eq!(Value::Array(items.clone()).as_array(), Some(&items[..]));
        assert_eq!(Value::Set(items.clone()).as_array(), Some(&items[..]));
        assert_eq!(Value::Push(items.clone()).as_array(), Some(&items[..]));
        assert_eq!(Value::Map(vec![]).as_array(), None);
    }

    fn enc(v: &Value, proto: u8) -> Vec<u8> {
        let mut out = BytesMut::new();
        v.encode(&mut out, proto);
        out.to_vec()
    }

    #[test]
    fn encode_both_protocols() {
        let map = Value::Map(vec![(simple("a"), Value::Double(1.5))]);
        assert_eq!(enc(&map, 3), b"%1\r\n+a\r\n,1.5\r\n");
        assert_eq!(enc(&map, 2), b"*2\r\n+a\r\n$3\r\n1.5\r\n");
        let set = Value::Set(vec![Value::Boolean(true), Value::Nil]);
        assert_eq!(enc(&set, 3), b"~2\r\n#t\r\n_\r\n");
        assert_eq!(enc(&set, 2), b"*2\r\n:1\r\n$-1\r\n");
        let push = Value::Push(vec![Value::BigNumber("12".into())]);
        assert_eq!(enc(&push, 3), b">1\r\n(12\r\n");
        assert_eq!(enc(&push, 2), b"*1\r\n$2\r\n12\r\n");
        let verbatim = Value::Verbatim {
            format: "txt".into(),
            text: Bytes::from_static(b"hi"),
        };
        assert_eq!(enc(&verbatim, 3), b"=6\r\ntxt:hi\r\n");
        assert_eq!(enc(&verbatim, 2), b"$2\r\nhi\r\n");
        assert_eq!(enc(&Value::Error("ERR x".into()), 2), b"-ERR x\r\n");
        assert_eq!(
            enc(&Value::Array(vec![Value::Integer(-1), bulk("")]), 2),
            b"*2\r\n:-1\r\n$0\r\n\r\n"
        );
    }

    #[test]
    fn resp3_round_trip() {
        for reply in crate::resp::reply::tests::REPLIES {
            let Ok(Some((value, _))) = decode(reply, 128) else {
                continue;
            };
            let again = enc(&value, 3);
            let (back, n) = decode(&again, 128).unwrap().unwrap();
            assert_eq!(n, again.len());
            if !matches!(value, Value::Error(_)) {
                assert_eq!(back, value, "{reply:?}");
            }
        }
    }
}
