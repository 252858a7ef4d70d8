//! Redis 7 key specifications and the algorithm that turns them into key positions.

use crate::resp::ReqArgs;
use crate::resp::int::string2ll;

/// Where the search for a key spec's first key starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeginSearch {
    /// The first key is at this fixed argument index (1 = right after the command name).
    Index(i32),
    /// The first key follows `keyword`, searched case-insensitively from `start_from`
    /// (a negative `start_from` counts from the end and searches backwards).
    Keyword {
        /// The keyword, as the server spells it (e.g. `STREAMS`).
        keyword: Box<[u8]>,
        /// Index the search starts at; negative counts from the end of the arguments.
        start_from: i32,
    },
    /// The server cannot describe it (e.g. SORT's BY/GET patterns); a native rule must decide.
    Unknown,
}

/// How many keys follow the first one, once the begin search found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindKeys {
    /// Keys up to `last_key` (relative to the first key; negative counts from the end of the
    /// arguments), every `step`; with `limit > 0` and `last_key == -1` the keys take
    /// `1/limit` of the remaining arguments (XREAD's "keys, then as many IDs").
    Range {
        /// Last key, relative to the first key; negative counts from the end.
        last_key: i32,
        /// Distance between two keys (2 for MSET's key/value pairs).
        step: i32,
        /// Divisor of the remaining arguments when `last_key` is -1; 0 = no limit.
        limit: i32,
    },
    /// The number of keys is itself an argument (EVAL, ZUNIONSTORE, LMPOP, …).
    Keynum {
        /// Index of the numkeys argument, relative to the begin search result.
        keynum_idx: i32,
        /// Index of the first key, relative to the begin search result.
        first_key: i32,
        /// Distance between two keys.
        step: i32,
    },
    /// The server cannot describe it; a native rule must decide.
    Unknown,
}

/// How a command touches the keys one spec finds (`RO`, `RW`, `access`, …).
///
/// Kept for the router's future read/write decisions per key; the finding algorithm ignores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeyAccess(u8);

impl KeyAccess {
    /// Read-only.
    pub const RO: KeyAccess = KeyAccess(1);
    /// Read-write.
    pub const RW: KeyAccess = KeyAccess(1 << 1);
    /// Overwrite.
    pub const OW: KeyAccess = KeyAccess(1 << 2);
    /// Remove.
    pub const RM: KeyAccess = KeyAccess(1 << 3);
    /// Reads or returns user data.
    pub const ACCESS: KeyAccess = KeyAccess(1 << 4);
    /// Updates data in place.
    pub const UPDATE: KeyAccess = KeyAccess(1 << 5);
    /// Adds data.
    pub const INSERT: KeyAccess = KeyAccess(1 << 6);
    /// Deletes data.
    pub const DELETE: KeyAccess = KeyAccess(1 << 7);

    /// The names as `COMMAND` spells them, in bit order.
    pub const NAMES: [(&'static str, KeyAccess); 8] = [
        ("RO", Self::RO),
        ("RW", Self::RW),
        ("OW", Self::OW),
        ("RM", Self::RM),
        ("access", Self::ACCESS),
        ("update", Self::UPDATE),
        ("insert", Self::INSERT),
        ("delete", Self::DELETE),
    ];

    /// No flag set.
    pub const fn empty() -> KeyAccess {
        KeyAccess(0)
    }

    /// True when every bit of `other` is set in `self`.
    pub const fn contains(self, other: KeyAccess) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both sets.
    pub const fn union(self, other: KeyAccess) -> KeyAccess {
        KeyAccess(self.0 | other.0)
    }
}

/// One key specification of a command, as `COMMAND` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// Where the first key is.
    pub begin: BeginSearch,
    /// How many keys follow.
    pub find: FindKeys,
    /// The arguments are not keys but still hash to a slot (SPUBLISH's shard channel).
    pub not_key: bool,
    /// The spec may miss keys (MIGRATE's KEYS); a native rule must decide.
    pub incomplete: bool,
    /// The access flags depend on the arguments (SET … GET).
    pub variable_flags: bool,
    /// How the keys are accessed.
    pub access: KeyAccess,
}

impl KeySpec {
    /// The spec names exactly one key, the first argument (GET's, SET's): the common case
    /// worth a shortcut.
    #[inline]
    pub(crate) fn is_first_argument_only(&self) -> bool {
        !self.not_key
            && self.begin == BeginSearch::Index(1)
            && self.find
                == FindKeys::Range {
                    last_key: 0,
                    step: 1,
                    limit: 0,
                }
    }
}

/// The specs cannot locate the keys of these arguments (Redis' `invalid_spec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpecFailed;

/// Runs every spec over `args` and appends the key positions to `out`, following Redis 7.0's
/// `getKeysUsingKeySpecs`.
///
/// `include_not_key` also takes specs flagged `not_key` (shard channels). With `partial`,
/// a spec that cannot be resolved is skipped instead of failing the whole search (Redis'
/// `GET_KEYSPEC_RETURN_PARTIAL`). On failure `out` may hold positions of earlier specs; the
/// caller truncates it.
pub(crate) fn find_keys(
    specs: &[KeySpec],
    args: &ReqArgs<'_>,
    include_not_key: bool,
    partial: bool,
    out: &mut Vec<usize>,
) -> Result<(), SpecFailed> {
    // Argument counts beyond i32 cannot be valid requests; the cap keeps the arithmetic
    // below in the integer width Redis uses.
    let argc = i64::try_from(args.len())
        .unwrap_or(i64::MAX)
        .min(i64::from(i32::MAX));
    for spec in specs {
        if spec.not_key && !include_not_key {
            continue;
        }
        match one_spec(spec, args, argc, out) {
            Ok(()) => {}
            Err(SpecFailed) if partial => {}
            Err(SpecFailed) => return Err(SpecFailed),
        }
    }
    Ok(())
}

/// The begin search of one spec: `Ok(None)` when its keyword is absent (no keys, no error).
fn begin_index(
    begin: &BeginSearch,
    args: &ReqArgs<'_>,
    argc: i64,
) -> Result<Option<i64>, SpecFailed> {
    match begin {
        BeginSearch::Index(pos) if *pos >= 1 => Ok(Some(i64::from(*pos))),
        BeginSearch::Index(_) | BeginSearch::Unknown => Err(SpecFailed),
        BeginSearch::Keyword {
            keyword,
            start_from,
        } => {
            let from = i64::from(*start_from);
            let (start, end) = if from > 0 {
                (from, argc - 1)
            } else {
                (argc + from, 1)
            };
            // Redis walks from start towards end, end excluded: a keyword in the last
            // position has no key after it. The walk is bounded by the argument count.
            let forward = start <= end;
            let mut i = start;
            while i != end {
                if i >= argc || i < 1 {
                    break;
                }
                let hit = usize::try_from(i)
                    .ok()
                    .and_then(|i| args.get(i))
                    .is_some_and(|a| a.eq_ignore_ascii_case(keyword));
                if hit {
                    return Ok(Some(i + 1));
                }
                i = if forward { i + 1 } else { i - 1 };
            }
            Ok(None)
        }
    }
}

fn one_spec(
    spec: &KeySpec,
    args: &ReqArgs<'_>,
    argc: i64,
    out: &mut Vec<usize>,
) -> Result<(), SpecFailed> {
    let Some(mut first) = begin_index(&spec.begin, args, argc)? else {
        return Ok(());
    };
    let (last, step) = match spec.find {
        FindKeys::Range {
            last_key,
            step,
            limit,
        } => {
            let last_key = i64::from(last_key);
            let last = if last_key >= 0 {
                first + last_key
            } else if limit == 0 {
                argc + last_key
            } else if limit > 0 {
                first + ((argc - first) / i64::from(limit) + last_key)
            } else {
                return Err(SpecFailed);
            };
            (last, step)
        }
        FindKeys::Keynum {
            keynum_idx,
            first_key,
            step,
        } => {
            let at = first + i64::from(keynum_idx);
            let numkeys = usize::try_from(at)
                .ok()
                .and_then(|at| args.get(at))
                .and_then(string2ll)
                .filter(|n| *n >= 0)
                .ok_or(SpecFailed)?;
            first += i64::from(first_key);
            // Redis truncates numkeys to a C int here; a huge count can wrap to a small one.
            (first + i64::from(numkeys as i32) - 1, step)
        }
        FindKeys::Unknown => return Err(SpecFailed),
    };
    if step <= 0 || last >= argc || last < first || first >= argc {
        return Err(SpecFailed);
    }
    // All positions are in 1..argc now, so the walk is bounded by the argument count.
    let mut i = first;
    while i <= last {
        if let Ok(pos) = usize::try_from(i) {
            out.push(pos);
        }
        i += i64::from(step);
    }
    if spec.incomplete {
        return Err(SpecFailed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::CommandTable;
    use crate::command::testsrv::{TestServer, req};
    use crate::resp::Value;

    fn spec(begin: BeginSearch, find: FindKeys) -> KeySpec {
        KeySpec {
            begin,
            find,
            not_key: false,
            incomplete: false,
            variable_flags: false,
            access: KeyAccess::empty(),
        }
    }

    fn range(last_key: i32, step: i32, limit: i32) -> FindKeys {
        FindKeys::Range {
            last_key,
            step,
            limit,
        }
    }

    fn keyword(word: &str, start_from: i32) -> BeginSearch {
        BeginSearch::Keyword {
            keyword: word.as_bytes().into(),
            start_from,
        }
    }

    fn run(specs: &[KeySpec], args: &[&[u8]], partial: bool) -> Result<Vec<usize>, SpecFailed> {
        let (buf, spans) = req(args);
        let mut out = Vec::new();
        find_keys(
            specs,
            &ReqArgs {
                buf: &buf,
                spans: &spans,
            },
            false,
            partial,
            &mut out,
        )?;
        Ok(out)
    }

    #[test]
    fn range_with_step_and_negative_last() {
        let mset = [spec(BeginSearch::Index(1), range(-1, 2, 0))];
        assert_eq!(
            run(&mset, &[b"mset", b"a", b"1", b"b", b"2"], false),
            Ok(vec![1, 3])
        );
        let blpop = [spec(BeginSearch::Index(1), range(-2, 1, 0))];
        assert_eq!(
            run(&blpop, &[b"blpop", b"a", b"b", b"0"], false),
            Ok(vec![1, 2])
        );
        assert_eq!(run(&blpop, &[b"blpop", b"0"], false), Err(SpecFailed));
    }

    #[test]
    fn keyword_search_forward_backward_and_limit() {
        let xread = [spec(keyword("STREAMS", 1), range(-1, 1, 2))];
        let args: [&[u8]; 8] = [b"xread", b"count", b"1", b"streams", b"a", b"b", b"0", b"0"];
        assert_eq!(run(&xread, &args, false), Ok(vec![4, 5]));
        // Absent keyword: no keys, not an error.
        assert_eq!(run(&xread, &[b"xread", b"a", b"b"], false), Ok(vec![]));
        // A keyword in the last position is never matched.
        assert_eq!(
            run(&xread, &[b"xread", b"count", b"streams"], false),
            Ok(vec![])
        );
        let back = [spec(keyword("KEYS", -2), range(-1, 1, 0))];
        let args: [&[u8]; 7] = [b"m", b"keys", b"x", b"KEYS", b"k1", b"k2", b"k3"];
        assert_eq!(run(&back, &args, false), Ok(vec![4, 5, 6]));
    }

    #[test]
    fn keynum_with_step_truncation_and_failures() {
        let specs = [spec(
            BeginSearch::Index(1),
            FindKeys::Keynum {
                keynum_idx: 0,
                first_key: 1,
                step: 2,
            },
        )];
        // Redis 7.0 ends the walk at first + numkeys - 1 whatever the step (no built-in
        // command has a step above 1; module commands get the same answer as from Redis).
        assert_eq!(
            run(&specs, &[b"c", b"4", b"a", b"1", b"b", b"2"], false),
            Ok(vec![2, 4])
        );
        assert_eq!(
            run(&specs, &[b"c", b"2", b"a", b"1", b"b", b"2"], false),
            Ok(vec![2])
        );
        assert_eq!(run(&specs, &[b"c", b"0", b"a"], false), Err(SpecFailed));
        assert_eq!(run(&specs, &[b"c", b"x", b"a"], false), Err(SpecFailed));
        assert_eq!(run(&specs, &[b"c", b"9", b"a"], false), Err(SpecFailed));
        // Redis casts numkeys to a C int: 2^32 + 1 counts as 1.
        assert_eq!(
            run(&specs, &[b"c", b"4294967297", b"a"], false),
            Ok(vec![2])
        );
    }

    #[test]
    fn incomplete_unknown_and_partial() {
        let mut incomplete = spec(BeginSearch::Index(1), range(0, 1, 0));
        incomplete.incomplete = true;
        let unknown = spec(BeginSearch::Unknown, FindKeys::Unknown);
        let first = spec(BeginSearch::Index(2), range(0, 1, 0));
        let specs = [first, incomplete, unknown];
        assert_eq!(run(&specs, &[b"c", b"a", b"b"], false), Err(SpecFailed));
        assert_eq!(run(&specs, &[b"c", b"a", b"b"], true), Ok(vec![2, 1]));
        let bad_step = [spec(BeginSearch::Index(1), range(-1, 0, 0))];
        assert_eq!(run(&bad_step, &[b"c", b"a"], false), Err(SpecFailed));
    }

    /// Positions from the built-in table against `COMMAND GETKEYS` of a live Redis 7.0.
    #[test]
    fn key_positions_match_live_getkeys() {
        let server = TestServer::start();
        let mut conn = server.connect();
        let table = CommandTable::builtin();
        let cases: &[&str] = &[
            "GET k1",
            "set k1 v nx get",
            "MSET k1 v1 k2 v2 k3 v3",
            "MSETNX k1 v1 k2 v2",
            "MGET k1 k2 k3",
            "DEL k1 k2",
            "EXISTS k1 k2 k3",
            "TOUCH k1",
            "UNLINK k1 k2",
            "WATCH k1 k2",
            "EXPIRE k1 10",
            "EVAL s 2 k1 k2 a1",
            "EVAL s 0",
            "EVAL s 0 a1 a2",
            "EVAL_RO s 1 k1",
            "EVALSHA 0123456789012345678901234567890123456789 1 k1 a",
            "EVALSHA_RO 0123456789012345678901234567890123456789 2 k1 k2",
            "FCALL f 2 k1 k2 a1",
            "FCALL_RO f 0 a1",
            "ZUNIONSTORE dst 2 k1 k2 WEIGHTS 1 2",
            "ZINTERSTORE dst 1 k1",
            "ZDIFFSTORE dst 2 k1 k2",
            "ZUNION 2 k1 k2 WITHSCORES",
            "ZINTER 3 k1 k2 k3",
            "ZDIFF 2 k1 k2",
            "ZINTERCARD 2 k1 k2 LIMIT 5",
            "SINTERCARD 2 k1 k2 LIMIT 1",
            "LMPOP 2 k1 k2 LEFT COUNT 3",
            "BLMPOP 0 2 k1 k2 RIGHT",
            "ZMPOP 1 k1 MIN",
            "BZMPOP 1.5 3 k1 k2 k3 MAX COUNT 2",
            "BLPOP k1 k2 0",
            "BRPOP k1 1",
            "BZPOPMIN k1 k2 0",
            "XREAD STREAMS k1 0",
            "XREAD COUNT 2 BLOCK 10 STREAMS k1 k2 0 0",
            "XREADGROUP GROUP g c COUNT 1 STREAMS k1 k2 > >",
            "XREADGROUP GROUP streams c NOACK STREAMS k1 >",
            "XADD k1 * f v",
            "SORT k1",
            "SORT k1 BY w* GET o* LIMIT 0 10 STORE dst",
            "SORT k1 STORE d1 STORE d2",
            "SORT k1 GET store LIMIT 0 1",
            "SORT_RO k1 BY w* GET o*",
            "GEORADIUS k1 0 0 10 km",
            "GEORADIUS k1 0 0 10 km STORE dst",
            "GEORADIUS k1 0 0 10 km COUNT 3 STOREDIST dst",
            "GEORADIUSBYMEMBER k1 m 10 km STORE dst",
            "GEOSEARCHSTORE dst k1 FROMMEMBER m BYRADIUS 1 km",
            "MIGRATE 127.0.0.1 1 k1 0 100",
            "MIGRATE 127.0.0.1 1 \"\" 0 100 COPY REPLACE KEYS k1 k2 k3",
            "MIGRATE 127.0.0.1 1 \"\" 0 100 AUTH keys KEYS k1",
            "MIGRATE 127.0.0.1 1 \"\" 0 100 AUTH2 u keys KEYS k1 k2",
            "OBJECT ENCODING k1",
            "object freq k1",
            "XINFO STREAM k1 FULL",
            "XINFO GROUPS k1",
            "XGROUP CREATE k1 g $",
            "MEMORY USAGE k1 SAMPLES 5",
            "LCS k1 k2 LEN",
            "BITOP AND dst k1 k2 k3",
            "BITFIELD k1 GET u8 0",
            "BITFIELD_RO k1 GET u8 0",
            "RENAME k1 k2",
            "RENAMENX k1 k2",
            "SMOVE k1 k2 m",
            "LMOVE k1 k2 LEFT RIGHT",
            "BLMOVE k1 k2 LEFT RIGHT 0",
            "RPOPLPUSH k1 k2",
            "COPY k1 k2 DB 1 REPLACE",
            "PFMERGE dst k1 k2",
            "PFCOUNT k1 k2",
            "SINTERSTORE dst k1 k2",
            "SUNION k1 k2",
            "SDIFFSTORE dst k1",
            "GETEX k1 PX 10",
            "RESTORE k1 0 payload",
            "DUMP k1",
            "HSET k1 f v f2 v2",
            "ZRANGESTORE dst k1 0 -1",
            "LPOS k1 e RANK 1",
        ];
        for case in cases {
            let args: Vec<Vec<u8>> = case
                .split(' ')
                .map(|a| {
                    if a == "\"\"" {
                        Vec::new()
                    } else {
                        a.as_bytes().to_vec()
                    }
                })
                .collect();
            let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
            let (buf, spans) = req(&refs);
            let req_args = ReqArgs {
                buf: &buf,
                spans: &spans,
            };
            let spec = table
                .resolve(&req_args)
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            let mut pos = Vec::new();
            spec.key_positions(&req_args, &mut pos)
                .unwrap_or_else(|e| panic!("{case}: {e}"));
            let ours: Vec<&[u8]> = pos.iter().map(|&p| refs[p]).collect();
            let mut getkeys: Vec<&[u8]> = vec![b"COMMAND", b"GETKEYS"];
            getkeys.extend(&refs);
            let theirs: Vec<Vec<u8>> = match conn.call(&getkeys) {
                Value::Array(keys) => keys
                    .into_iter()
                    .map(|k| match k {
                        Value::Bulk(b) => b.to_vec(),
                        other => panic!("{case}: key {other:?}"),
                    })
                    .collect(),
                other => panic!("{case}: COMMAND GETKEYS replied {other:?}"),
            };
            assert_eq!(ours, theirs, "{case}");
        }
        assert!(cases.len() >= 60);
    }
}
