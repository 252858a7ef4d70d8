//! RESP wire protocol: the request parser, the reply scanner, an owned value decoder for the
//! control plane, encoding helpers, and the integer syntax they all share.
//!
//! The data path never builds values: requests become argument spans into the read buffer and
//! replies are only measured, so bytes are forwarded as they arrived.

pub mod encode;
pub(crate) mod int;
pub mod reply;
pub mod request;
pub mod value;

pub use reply::{ReplyScanner, scan_reply};
pub use request::{Limits, ParseOutcome, ReqArgs, RequestParser, parse_request};
pub use value::Value;

/// A violation of the RESP protocol by a peer (client or backend).
///
/// The `Display` text is what follows `-ERR Protocol error: ` in the reply to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("invalid bulk length")]
    InvalidBulkLength,
    #[error("expected '$', got '{0}'")]
    ExpectedBulk(char),
    #[error("too many arguments (limit {0})")]
    TooManyArgs(usize),
    #[error("bulk of {0} bytes exceeds the limit of {1} bytes")]
    BulkTooLarge(u64, usize),
    #[error("too big inline request")]
    InlineTooLarge,
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
    /// An inline argument that only exists after unescaping (`\n`, `\x41`, `\"`, or quotes in
    /// the middle of a word): argument spans cannot point at bytes that are not in the buffer.
    #[error("unsupported escape in inline request")]
    UnsupportedEscape,
    #[error("invalid reply type byte 0x{0:02x}")]
    InvalidType(u8),
    #[error("malformed {0} line")]
    MalformedLine(&'static str),
    #[error("missing CRLF after bulk payload")]
    MissingCrlf,
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
    /// A reply handed over as complete ends before its last element.
    #[error("reply ends before its last element")]
    Truncated,
}
