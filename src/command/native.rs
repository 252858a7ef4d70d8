//! Per-command rules for the cases key specs cannot settle: Redis' native `getkeys`
//! functions (SORT, MIGRATE, GEORADIUS) and the numkeys checks of the commands themselves.

use super::error::NumkeysError;
use crate::resp::ReqArgs;
use crate::resp::int::string2ll;

/// The native rule a command gets, chosen by name when the spec is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Native {
    /// Key specs alone; a spec that fails is skipped (module commands).
    #[default]
    None,
    /// EVAL, EVAL_RO.
    Eval,
    /// EVALSHA, EVALSHA_RO: the SHA length is checked first.
    EvalSha,
    /// FCALL, FCALL_RO.
    Fcall,
    /// ZUNION/ZINTER/ZDIFF(STORE), ZINTERCARD; numkeys at this index.
    ZsetOp(usize),
    /// LMPOP, ZMPOP, BLMPOP, BZMPOP; numkeys at this index.
    Mpop(usize),
    /// SINTERCARD.
    Sintercard,
    /// SORT: the sorted key and the last STORE target.
    Sort,
    /// SORT_RO: the sorted key.
    SortRo,
    /// MIGRATE: the key argument, or everything after KEYS.
    Migrate,
    /// GEORADIUS, GEORADIUSBYMEMBER: the key and the last STORE/STOREDIST target.
    Georadius,
    /// XREAD, XREADGROUP (the flag): the STREAMS list must be balanced.
    Xread(bool),
}

impl Native {
    /// The rule Redis 7.0 applies to the command called `name` (lowercase).
    pub(crate) fn for_name(name: &str) -> Native {
        match name {
            "eval" | "eval_ro" => Native::Eval,
            "evalsha" | "evalsha_ro" => Native::EvalSha,
            "fcall" | "fcall_ro" => Native::Fcall,
            "zunionstore" | "zinterstore" | "zdiffstore" => Native::ZsetOp(2),
            "zunion" | "zinter" | "zdiff" | "zintercard" => Native::ZsetOp(1),
            "lmpop" | "zmpop" => Native::Mpop(1),
            "blmpop" | "bzmpop" => Native::Mpop(2),
            "sintercard" => Native::Sintercard,
            "sort" => Native::Sort,
            "sort_ro" => Native::SortRo,
            "migrate" => Native::Migrate,
            "georadius" | "georadiusbymember" => Native::Georadius,
            "xread" => Native::Xread(false),
            "xreadgroup" => Native::Xread(true),
            _ => Native::None,
        }
    }
}

fn arg<'a>(args: &ReqArgs<'a>, i: usize) -> &'a [u8] {
    args.get(i).unwrap_or_default()
}

/// Checks that run even when the specs succeed: only XREAD's balance, which the specs do not
/// see but which the router needs to pair stream keys with their IDs.
pub(crate) fn precheck(native: Native, args: &ReqArgs<'_>) -> Result<(), NumkeysError> {
    match native {
        Native::Xread(group) => xread_balance(args, group),
        _ => Ok(()),
    }
}

/// Replays XREAD's option parsing up to STREAMS. Only an odd STREAMS list is reported; any
/// other problem is left to the server, which words it itself.
fn xread_balance(args: &ReqArgs<'_>, group: bool) -> Result<(), NumkeysError> {
    let argc = args.len();
    let mut i = 1;
    while i < argc {
        let opt = arg(args, i);
        let more = argc - i - 1;
        if opt.eq_ignore_ascii_case(b"BLOCK") && more > 0 {
            i += 1;
            // A bad timeout is reported before the streams; leave it to the server. Redis
            // also refuses timeouts past i64::MAX minus the current Unix time in ms, which
            // stays below 2^42 until 2109.
            if string2ll(arg(args, i)).is_none_or(|t| !(0..=i64::MAX - (1 << 42)).contains(&t)) {
                return Ok(());
            }
        } else if opt.eq_ignore_ascii_case(b"COUNT") && more > 0 {
            i += 1;
            if string2ll(arg(args, i)).is_none() {
                return Ok(());
            }
        } else if opt.eq_ignore_ascii_case(b"STREAMS") && more > 0 {
            return if more.is_multiple_of(2) {
                Ok(())
            } else {
                Err(NumkeysError::UnbalancedStreams)
            };
        } else if group && opt.eq_ignore_ascii_case(b"GROUP") && more >= 2 {
            i += 2;
        } else if group && opt.eq_ignore_ascii_case(b"NOACK") {
        } else {
            return Ok(());
        }
        i += 1;
    }
    Ok(())
}

/// What Redis does when the specs fail: the native getkeys function for commands that have
/// one, else the command's own numkeys error. Returns `Ok(false)` for commands without a
/// native rule (the caller then keeps what the specs found).
pub(crate) fn fallback(
    native: Native,
    name: &str,
    args: &ReqArgs<'_>,
    out: &mut Vec<usize>,
) -> Result<bool, NumkeysError> {
    let argc = args.len();
    match native {
        Native::None | Native::Xread(_) => return Ok(false),
        Native::Eval | Native::EvalSha | Native::Fcall => {
            if native == Native::EvalSha && arg(args, 1).len() != 40 {
                return Err(NumkeysError::NoScript);
            }
            let Some(n) = string2ll(arg(args, 2)) else {
                return Err(if native == Native::Fcall {
                    NumkeysError::BadNumber
                } else {
                    NumkeysError::NotAnInteger
                });
            };
            if n < 0 {
                return Err(NumkeysError::Negative);
            }
            if n > argc as i64 - 3 {
                return Err(NumkeysError::TooMany);
            }
            // numkeys 0 is valid: a keyless script.
        }
        Native::ZsetOp(at) => {
            let n = string2ll(arg(args, at)).ok_or(NumkeysError::NotAnInteger)?;
            if n < 1 {
                return Err(NumkeysError::NeedsInputKey(name.into()));
            }
            if n > argc as i64 - at as i64 - 1 {
                return Err(NumkeysError::Syntax);
            }
        }
        Native::Mpop(at) => {
            let n = string2ll(arg(args, at))
                .filter(|n| *n >= 1)
                .ok_or(NumkeysError::NotPositive)?;
            if n > argc as i64 - at as i64 - 1 {
                return Err(NumkeysError::Syntax);
            }
        }
        Native::Sintercard => {
            let n = string2ll(arg(args, 1))
                .filter(|n| *n >= 1)
                .ok_or(NumkeysError::NotPositive)?;
            if n > argc as i64 - 2 {
                return Err(NumkeysError::TooMany);
            }
        }
        Native::Sort => sort_keys(args, out),
        Native::SortRo => out.push(1),
        Native::Migrate => migrate_keys(args, out),
        Native::Georadius => georadius_keys(args, out),
    }
    Ok(true)
}

/// SORT: the key, then the target of the last STORE that has an argument; LIMIT, GET and BY
/// arguments are skipped so that a pattern named "store" is not mistaken for the option.
fn sort_keys(args: &ReqArgs<'_>, out: &mut Vec<usize>) {
    out.push(1);
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let a = arg(args, i);
        if a.eq_ignore_ascii_case(b"limit") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"get") || a.eq_ignore_ascii_case(b"by") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"store") && i + 1 < args.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    out.extend(store);
}

/// MIGRATE: the key at index 3, or with an empty key argument the keys after KEYS.
fn migrate_keys(args: &ReqArgs<'_>, out: &mut Vec<usize>) {
    let argc = args.len();
    let mut i = 6;
    while i < argc {
        let a = arg(args, i);
        if a.eq_ignore_ascii_case(b"keys") {
            // Redis finds no key when KEYS comes with a non-empty key argument; the server
            // then rejects the request.
            if arg(args, 3).is_empty() {
                out.extend(i + 1..argc);
            }
            return;
        }
        if a.eq_ignore_ascii_case(b"auth") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"auth2") {
            i += 2;
        }
        i += 1;
    }
    out.push(3);
}

/// GEORADIUS and GEORADIUSBYMEMBER: the key, then the target of the last STORE/STOREDIST with an argument.
fn georadius_keys(args: &ReqArgs<'_>, out: &mut Vec<usize>) {
    out.push(1);
    let mut store = None;
    let mut i = 5;
    while i < args.len() {
        let a = arg(args, i);
        if (a.eq_ignore_ascii_case(b"store") || a.eq_ignore_ascii_case(b"storedist"))
            && i + 1 < args.len()
        {
            store = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    out.extend(store);
}
