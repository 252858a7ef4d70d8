//! Errors of command resolution and key finding, worded exactly as Redis 7.0 replies them.

use crate::resp::ReqArgs;

/// Why a request cannot be routed. `Display` is the exact text Redis 7.0 replies, without the
/// leading `-`, so the gateway can answer the client the way the server would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No such command. `args` is already rendered the way Redis does (`'a' 'b' `).
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    Unknown {
        /// The command name as sent (truncated and sanitised like Redis does).
        name: Box<str>,
        /// The first arguments, each quoted and followed by a space.
        args: Box<str>,
    },
    /// A container command (OBJECT, CLIENT, …) with an unknown subcommand.
    #[error("ERR unknown subcommand '{sub}'. Try {container} HELP.")]
    UnknownSubcommand {
        /// The container name, upper-cased.
        container: Box<str>,
        /// The subcommand as sent.
        sub: Box<str>,
    },
    /// The argument count does not match the arity.
    #[error("ERR wrong number of arguments for '{name}' command")]
    WrongArity {
        /// The full lowercase name, `object|encoding` for subcommands.
        name: Box<str>,
    },
    /// The numkeys argument (or what it describes) is invalid.
    #[error(transparent)]
    BadNumkeys(#[from] NumkeysError),
}

/// A request whose keys cannot be located because of its numkeys-like arguments; the texts
/// are those the command itself replies in Redis 7.0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumkeysError {
    /// EVAL, ZUNIONSTORE, ZINTERCARD…: numkeys is not an integer.
    #[error("ERR value is not an integer or out of range")]
    NotAnInteger,
    /// FCALL: numkeys is not an integer.
    #[error("ERR Bad number of keys provided")]
    BadNumber,
    /// EVAL, FCALL: numkeys is negative.
    #[error("ERR Number of keys can't be negative")]
    Negative,
    /// EVAL, FCALL, SINTERCARD: numkeys exceeds the remaining arguments.
    #[error("ERR Number of keys can't be greater than number of args")]
    TooMany,
    /// LMPOP, ZMPOP, BLMPOP, BZMPOP, SINTERCARD: numkeys is not a positive integer.
    #[error("ERR numkeys should be greater than 0")]
    NotPositive,
    /// ZUNION/ZINTER/ZDIFF(STORE), ZINTERCARD: numkeys is below 1.
    #[error("ERR at least 1 input key is needed for '{0}' command")]
    NeedsInputKey(Box<str>),
    /// ZUNION family and *MPOP: numkeys exceeds the remaining arguments.
    #[error("ERR syntax error")]
    Syntax,
    /// EVALSHA with a SHA that is not 40 characters long (checked before numkeys).
    #[error("NOSCRIPT No matching script. Please use EVAL.")]
    NoScript,
    /// XREAD/XREADGROUP: an odd number of arguments after STREAMS.
    #[error(
        "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
    )]
    UnbalancedStreams,
}

/// How much of a user argument Redis echoes (`%.128s`).
const ECHO_LIMIT: usize = 128;

/// The part of `arg` that C's `%.Ns` prints: up to the first NUL, at most `max` bytes.
fn c_prefix(arg: &[u8], max: usize) -> &[u8] {
    let end = arg
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(arg.len())
        .min(max);
    &arg[..end]
}

/// Text for an error reply: CR and LF become spaces (Redis does the same so the reply stays
/// one line); bytes that are not UTF-8 are replaced.
fn sanitize(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace(['\r', '\n'], " ")
}

impl CommandError {
    /// The error for an unknown command `args[0]`, echoing arguments like Redis does.
    pub fn unknown(args: &ReqArgs<'_>) -> CommandError {
        let name = args.get(0).unwrap_or_default();
        let mut rendered: Vec<u8> = Vec::new();
        for i in 1..args.len() {
            if rendered.len() >= ECHO_LIMIT {
                break;
            }
            let room = ECHO_LIMIT - rendered.len();
            rendered.push(b'\'');
            rendered.extend_from_slice(c_prefix(args.get(i).unwrap_or_default(), room));
            rendered.extend_from_slice(b"' ");
        }
        CommandError::Unknown {
            name: sanitize(c_prefix(name, ECHO_LIMIT)).into(),
            args: sanitize(&rendered).into(),
        }
    }

    /// The error for an unknown subcommand `sub` of the container command `container`.
    pub fn unknown_subcommand(container: &[u8], sub: &[u8]) -> CommandError {
        CommandError::UnknownSubcommand {
            container: sanitize(container).to_ascii_uppercase().into(),
            sub: sanitize(c_prefix(sub, ECHO_LIMIT)).into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::CommandTable;
    use crate::command::testsrv::{TestServer, req};

    #[test]
    fn unknown_command_echo_is_truncated_like_redis() {
        let long = vec![b'x'; 200];
        let (buf, spans) = req(&[b"foo", b"a\r\nb", &long, b"c"]);
        let err = CommandError::unknown(&ReqArgs {
            buf: &buf,
            spans: &spans,
        });
        let text = err.to_string();
        assert!(
            text.starts_with("ERR unknown command 'foo', with args beginning with: 'a  b' 'xxx")
        );
        assert!(!text.contains("'c'"));
    }

    /// Every error text is compared with what a live Redis 7.0 replies to the same request.
    #[test]
    fn error_texts_match_live_server() {
        let server = TestServer::start();
        let mut conn = server.connect();
        let table = CommandTable::builtin();
        // A library so that FCALL reaches its numkeys checks instead of "Function not found".
        let lib =
            "#!lua name=meridian_test\nredis.register_function('f', function(k, a) return 1 end)";
        conn.call(&[b"FUNCTION", b"LOAD", b"REPLACE", lib.as_bytes()]);
        let sha40: &[u8] = b"0123456789012345678901234567890123456789";
        let long = vec![b'y'; 300];
        let cases: Vec<Vec<&[u8]>> = vec![
            vec![b"foo", b"a", b"b"],
            vec![b"foo"],
            vec![b"fOo\r\nbar", b"a\nb", &long, b"z"],
            vec![b"OBJECT"],
            vec![b"object", b"x"],
            vec![b"xinfo", b"nosuch", b"k"],
            vec![b"OBJECT", b"ENCODING"],
            vec![b"get"],
            vec![b"GET", b"a", b"b"],
            vec![b"xread", b"streams", b"a"],
            vec![b"eval", b"return 1", b"5", b"a"],
            vec![b"eval", b"return 1", b"-1"],
            vec![b"eval", b"return 1", b"x"],
            vec![b"eval", b"return 1", b"01", b"a"],
            vec![b"eval_ro", b"return 1", b"3", b"a"],
            vec![b"evalsha", b"abc", b"3", b"a"],
            vec![b"evalsha", sha40, b"3", b"a"],
            vec![b"evalsha_ro", sha40, b"x"],
            vec![b"fcall", b"f", b"3", b"a"],
            vec![b"fcall", b"f", b"-1"],
            vec![b"fcall", b"f", b"x"],
            vec![b"fcall_ro", b"f", b"2", b"a"],
            vec![b"zunionstore", b"d", b"0", b"a"],
            vec![b"zunionstore", b"d", b"3", b"a"],
            vec![b"zunionstore", b"d", b"x", b"a"],
            vec![b"zinterstore", b"d", b"-1", b"a"],
            vec![b"zdiffstore", b"d", b"0", b"a"],
            vec![b"zunion", b"0", b"a"],
            vec![b"zinter", b"3", b"a"],
            vec![b"zdiff", b"x", b"a"],
            vec![b"zintercard", b"0", b"a"],
            vec![b"zintercard", b"3", b"a"],
            vec![b"lmpop", b"0", b"a", b"LEFT"],
            vec![b"lmpop", b"3", b"a", b"LEFT"],
            vec![b"zmpop", b"x", b"a", b"MIN"],
            vec![b"blmpop", b"0", b"-1", b"a", b"LEFT"],
            vec![b"bzmpop", b"nan", b"9", b"a", b"MIN"],
            vec![b"sintercard", b"0", b"a"],
            vec![b"sintercard", b"3", b"a"],
            vec![b"xread", b"streams", b"a", b"b", b"c"],
            vec![
                b"XREAD", b"COUNT", b"1", b"BLOCK", b"0", b"STREAMS", b"a", b"b", b"c",
            ],
            vec![
                b"xreadgroup",
                b"GROUP",
                b"g",
                b"c",
                b"streams",
                b"a",
                b"b",
                b"c",
            ],
            vec![
                b"xreadgroup",
                b"GROUP",
                b"g",
                b"c",
                b"NOACK",
                b"streams",
                b"a",
                b"b",
                b"c",
            ],
        ];
        for case in cases {
            let (buf, spans) = req(&case);
            let args = ReqArgs {
                buf: &buf,
                spans: &spans,
            };
            let ours = match table.resolve(&args) {
                Err(e) => e,
                Ok(spec) => spec
                    .key_positions(&args, &mut Vec::new())
                    .expect_err(&format!("no local error for {case:?}")),
            };
            let theirs = conn.call_error(&case);
            assert_eq!(ours.to_string(), theirs, "request {case:?}");
        }
    }
}
