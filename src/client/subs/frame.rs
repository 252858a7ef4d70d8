//! Reading the frames a subscription connection sends (confirmations, messages, errors, the
//! echo of a sync token) and writing the confirmations meridian answers with.

use bytes::BytesMut;

use crate::resp::encode;
use crate::resp::reply::aggregate_elements;

/// The three kinds of subscription Redis keeps per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// SUBSCRIBE / UNSUBSCRIBE.
    Channel,
    /// PSUBSCRIBE / PUNSUBSCRIBE.
    Pattern,
    /// SSUBSCRIBE / SUNSUBSCRIBE.
    Shard,
}

impl Kind {
    /// The command (and confirmation) name that subscribes (`on`) or unsubscribes.
    pub fn verb(self, on: bool) -> &'static str {
        match (self, on) {
            (Kind::Channel, true) => "subscribe",
            (Kind::Channel, false) => "unsubscribe",
            (Kind::Pattern, true) => "psubscribe",
            (Kind::Pattern, false) => "punsubscribe",
            (Kind::Shard, true) => "ssubscribe",
            (Kind::Shard, false) => "sunsubscribe",
        }
    }
}

/// What one frame from a subscription connection is.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A (un)subscribe confirmation; `name` is None for the "nothing to unsubscribe" form.
    Confirm {
        kind: Kind,
        on: bool,
        name: Option<&'a [u8]>,
    },
    /// A published message (`pattern` set for `pmessage`).
    Message {
        kind: Kind,
        pattern: Option<&'a [u8]>,
        channel: &'a [u8],
    },
    /// An error reply.
    Error,
    /// Anything else (a PING reply, a push meridian does not know).
    Other,
}

/// Nesting looked into: these frames are flat.
const DEPTH: usize = 4;

/// The content of a bulk string element (`$n\r\n…\r\n`); None for a null or another type.
fn bulk_content(elem: &[u8]) -> Option<&[u8]> {
    let rest = elem.strip_prefix(b"$")?;
    let eol = rest.windows(2).position(|w| w == b"\r\n")?;
    let len: usize = std::str::from_utf8(&rest[..eol]).ok()?.parse().ok()?;
    rest.get(eol + 2..eol + 2 + len)
}

/// A message frame, when its channel could be read.
fn message<'a>(kind: Kind, pattern: Option<&'a [u8]>, channel: Option<&'a [u8]>) -> Frame<'a> {
    match channel {
        Some(channel) => Frame::Message {
            kind,
            pattern,
            channel,
        },
        None => Frame::Other,
    }
}

/// Classifies one complete frame.
pub fn classify(frame: &[u8]) -> Frame<'_> {
    if matches!(frame.first(), Some(b'-' | b'!')) {
        return Frame::Error;
    }
    let Some(elems) = aggregate_elements(frame, DEPTH).ok().flatten() else {
        return Frame::Other;
    };
    let elem = |i: usize| elems.get(i).map(|r| &frame[r.clone()]);
    let Some(verb) = elem(0).and_then(bulk_content) else {
        return Frame::Other;
    };
    let text = |i: usize| elem(i).and_then(bulk_content);
    match (verb, elems.len()) {
        (b"message", 3) => message(Kind::Channel, None, text(1)),
        (b"smessage", 3) => message(Kind::Shard, None, text(1)),
        (b"pmessage", 4) => match text(1) {
            Some(pattern) => message(Kind::Pattern, Some(pattern), text(2)),
            None => Frame::Other,
        },
        (_, 3) if elem(2).is_some_and(|c| c.starts_with(b":")) => {
            for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
                for on in [true, false] {
                    if verb == kind.verb(on).as_bytes() {
                        return Frame::Confirm {
                            kind,
                            on,
                            name: text(1),
                        };
                    }
                }
            }
            Frame::Other
        }
        _ => Frame::Other,
    }
}

/// True when `frame` is the echo of the sync token `token` (given with its CRLF): the
/// `*2 pong <token>` of a subscribed RESP2 connection, or a plain bulk echo.
pub fn is_token_reply(frame: &[u8], token: &[u8]) -> bool {
    frame.ends_with(token)
        && (frame.starts_with(b"$")
            || frame.starts_with(b"*2\r\n$4\r\npong\r\n")
            || frame.starts_with(b">2\r\n$4\r\npong\r\n"))
}

/// Writes the confirmation one Redis sends for one (un)subscribed name.
pub fn confirmation(
    out: &mut BytesMut,
    kind: Kind,
    on: bool,
    name: Option<&[u8]>,
    count: usize,
    proto: u8,
) {
    encode::push_header(out, 3, proto);
    encode::bulk(out, kind.verb(on).as_bytes());
    match name {
        Some(name) => encode::bulk(out, name),
        None => encode::null(out, proto),
    }
    encode::integer(out, i64::try_from(count).unwrap_or(i64::MAX));
}

/// The reply of PING in RESP2 subscribed mode: `*2 pong <message>`.
pub fn subscribed_pong(out: &mut BytesMut, message: Option<&[u8]>) {
    encode::array_header(out, 2);
    encode::bulk(out, b"pong");
    encode::bulk(out, message.unwrap_or_default());
}

/// Channels whose messages each node makes for itself (keyspace notifications): they are
/// subscribed on every master and never propagated between nodes.
pub fn is_node_local(channel: &[u8]) -> bool {
    channel.starts_with(b"__keyspace@") || channel.starts_with(b"__keyevent@")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_frames() {
        assert_eq!(
            classify(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n"),
            Frame::Confirm {
                kind: Kind::Channel,
                on: true,
                name: Some(b"a")
            }
        );
        assert_eq!(
            classify(b">3\r\n$12\r\nsunsubscribe\r\n_\r\n:0\r\n"),
            Frame::Confirm {
                kind: Kind::Shard,
                on: false,
                name: None
            }
        );
        assert_eq!(
            classify(b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nx\r\n"),
            Frame::Message {
                kind: Kind::Channel,
                pattern: None,
                channel: b"a"
            }
        );
        assert_eq!(
            classify(b">4\r\n$8\r\npmessage\r\n$2\r\na*\r\n$2\r\nab\r\n$1\r\nx\r\n"),
            Frame::Message {
                kind: Kind::Pattern,
                pattern: Some(b"a*"),
                channel: b"ab"
            }
        );
        assert_eq!(classify(b"-NOPERM no\r\n"), Frame::Error);
        assert_eq!(classify(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"), Frame::Other);
        assert_eq!(classify(b"+OK\r\n"), Frame::Other);
        // A message whose payload looks like a count is still a message.
        assert!(matches!(
            classify(b"*3\r\n$8\r\nsmessage\r\n$1\r\na\r\n$2\r\n:1\r\n"),
            Frame::Message { .. }
        ));
    }

    #[test]
    fn token_echoes() {
        let token = b"meridian:sync:1:0\r\n";
        assert!(is_token_reply(
            b"*2\r\n$4\r\npong\r\n$17\r\nmeridian:sync:1:0\r\n",
            token
        ));
        assert!(is_token_reply(b"$17\r\nmeridian:sync:1:0\r\n", token));
        assert!(!is_token_reply(
            b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$17\r\nmeridian:sync:1:0\r\n",
            token
        ));
    }

    #[test]
    fn writes_confirmations() {
        let mut out = BytesMut::new();
        confirmation(&mut out, Kind::Pattern, false, None, 1, 2);
        assert_eq!(&out[..], b"*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:1\r\n");
        out.clear();
        confirmation(&mut out, Kind::Shard, true, Some(b"s"), 2, 3);
        assert_eq!(&out[..], b">3\r\n$10\r\nssubscribe\r\n$1\r\ns\r\n:2\r\n");
        assert!(is_node_local(b"__keyevent@0__:expired"));
        assert!(!is_node_local(b"news"));
    }
}
