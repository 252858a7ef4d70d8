//! The bounded set of error kinds `meridian_errors_total` counts, read off an error reply.

/// What went wrong, as counted by `meridian_errors_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ErrorKind {
    /// The client broke the protocol (counted by the session, not from a reply).
    Protocol,
    UnknownCommand,
    WrongArity,
    /// A command meridian refuses (`… is not supported through meridian`).
    Unsupported,
    /// meridian did not send the request: breaker open, no connection (`TRYAGAIN meridian:`).
    Unavailable,
    /// meridian lost the backend connection after sending (`ERR meridian:`).
    Backend,
    ClusterDown,
    CrossSlot,
    /// A node's own TRYAGAIN (a slot moving).
    TryAgain,
    /// MOVED/ASK past the redirection limit.
    Redirect,
    WrongType,
    NoScript,
    ExecAbort,
    /// NOAUTH, WRONGPASS, NOPERM.
    Auth,
    Oom,
    Busy,
    Loading,
    ReadOnly,
    MasterDown,
    /// Any other `ERR …`.
    Err,
    /// Any other error code.
    Other,
}

impl ErrorKind {
    /// Every kind, in the order of its index.
    pub const ALL: [ErrorKind; 21] = [
        ErrorKind::Protocol,
        ErrorKind::UnknownCommand,
        ErrorKind::WrongArity,
        ErrorKind::Unsupported,
        ErrorKind::Unavailable,
        ErrorKind::Backend,
        ErrorKind::ClusterDown,
        ErrorKind::CrossSlot,
        ErrorKind::TryAgain,
        ErrorKind::Redirect,
        ErrorKind::WrongType,
        ErrorKind::NoScript,
        ErrorKind::ExecAbort,
        ErrorKind::Auth,
        ErrorKind::Oom,
        ErrorKind::Busy,
        ErrorKind::Loading,
        ErrorKind::ReadOnly,
        ErrorKind::MasterDown,
        ErrorKind::Err,
        ErrorKind::Other,
    ];
    /// Number of kinds.
    pub const COUNT: usize = ErrorKind::ALL.len();

    /// The `kind` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Protocol => "protocol",
            ErrorKind::UnknownCommand => "unknown_command",
            ErrorKind::WrongArity => "wrong_arity",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Backend => "backend",
            ErrorKind::ClusterDown => "clusterdown",
            ErrorKind::CrossSlot => "crossslot",
            ErrorKind::TryAgain => "tryagain",
            ErrorKind::Redirect => "redirect",
            ErrorKind::WrongType => "wrongtype",
            ErrorKind::NoScript => "noscript",
            ErrorKind::ExecAbort => "execabort",
            ErrorKind::Auth => "auth",
            ErrorKind::Oom => "oom",
            ErrorKind::Busy => "busy",
            ErrorKind::Loading => "loading",
            ErrorKind::ReadOnly => "readonly",
            ErrorKind::MasterDown => "masterdown",
            ErrorKind::Err => "err",
            ErrorKind::Other => "other",
        }
    }

    /// The kind of a reply when it is an error (`-…` or a RESP3 blob error `!…`); `None` for
    /// any other reply. Looks at the error code and, for `ERR`, at the start of the message.
    pub fn of_reply(reply: &[u8]) -> Option<ErrorKind> {
        let text = match reply.first()? {
            b'-' => &reply[1..],
            b'!' => {
                let at = reply.windows(2).position(|w| w == b"\r\n")?;
                &reply[at + 2..]
            }
            _ => return None,
        };
        let end = text
            .iter()
            .position(|&b| b == b' ' || b == b'\r')
            .unwrap_or(text.len());
        let rest = text.get(end + 1..).unwrap_or_default();
        Some(match &text[..end] {
            b"ERR" => err_kind(rest),
            b"TRYAGAIN" if rest.starts_with(b"meridian:") => ErrorKind::Unavailable,
            b"TRYAGAIN" => ErrorKind::TryAgain,
            b"CLUSTERDOWN" => ErrorKind::ClusterDown,
            b"CROSSSLOT" => ErrorKind::CrossSlot,
            b"MOVED" | b"ASK" => ErrorKind::Redirect,
            b"WRONGTYPE" => ErrorKind::WrongType,
            b"NOSCRIPT" => ErrorKind::NoScript,
            b"EXECABORT" => ErrorKind::ExecAbort,
            b"NOAUTH" | b"WRONGPASS" | b"NOPERM" => ErrorKind::Auth,
            b"OOM" => ErrorKind::Oom,
            b"BUSY" => ErrorKind::Busy,
            b"LOADING" => ErrorKind::Loading,
            b"READONLY" => ErrorKind::ReadOnly,
            b"MASTERDOWN" => ErrorKind::MasterDown,
            _ => ErrorKind::Other,
        })
    }
}

/// The kind of an `ERR` reply from the words after `ERR `.
fn err_kind(rest: &[u8]) -> ErrorKind {
    const UNSUPPORTED: &[u8] = b"not supported through meridian";
    if rest.starts_with(b"unknown command") || rest.starts_with(b"unknown subcommand") {
        ErrorKind::UnknownCommand
    } else if rest.starts_with(b"wrong number of arguments") {
        ErrorKind::WrongArity
    } else if rest.starts_with(b"meridian:") {
        ErrorKind::Backend
    } else if rest[..rest.len().min(256)]
        .windows(UNSUPPORTED.len())
        .any(|w| w == UNSUPPORTED)
    {
        ErrorKind::Unsupported
    } else {
        ErrorKind::Err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_replies() {
        let table: [(&[u8], Option<ErrorKind>); 16] = [
            (b"+OK\r\n", None),
            (b"$-1\r\n", None),
            (
                b"-ERR unknown command 'foo', with args beginning with: \r\n",
                Some(ErrorKind::UnknownCommand),
            ),
            (
                b"-ERR unknown subcommand 'x'. Try OBJECT HELP.\r\n",
                Some(ErrorKind::UnknownCommand),
            ),
            (
                b"-ERR wrong number of arguments for 'get' command\r\n",
                Some(ErrorKind::WrongArity),
            ),
            (
                b"-ERR 'monitor' is not supported through meridian: x\r\n",
                Some(ErrorKind::Unsupported),
            ),
            (
                b"-TRYAGAIN meridian: master a:1 for slot 3 unavailable\r\n",
                Some(ErrorKind::Unavailable),
            ),
            (
                b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
                Some(ErrorKind::TryAgain),
            ),
            (
                b"-ERR meridian: connection to a:1 lost\r\n",
                Some(ErrorKind::Backend),
            ),
            (
                b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
                Some(ErrorKind::WrongType),
            ),
            (
                b"-CROSSSLOT Keys in request don't hash to the same slot\r\n",
                Some(ErrorKind::CrossSlot),
            ),
            (b"-MOVED 3 a:1\r\n", Some(ErrorKind::Redirect)),
            (b"-ERR syntax error\r\n", Some(ErrorKind::Err)),
            (b"-NOPERM no\r\n", Some(ErrorKind::Auth)),
            (b"-WEIRD thing\r\n", Some(ErrorKind::Other)),
            (b"!21\r\nLOADING loading data\r\n", Some(ErrorKind::Loading)),
        ];
        for (reply, kind) in table {
            assert_eq!(
                ErrorKind::of_reply(reply),
                kind,
                "{}",
                String::from_utf8_lossy(reply)
            );
        }
        assert_eq!(ErrorKind::of_reply(b"-ERR"), Some(ErrorKind::Err));
        assert_eq!(ErrorKind::of_reply(b"-"), Some(ErrorKind::Other));
    }

    #[test]
    fn indexes_follow_the_list() {
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i, "{}", kind.as_str());
        }
    }
}
