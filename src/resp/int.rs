//! Decimal integers read the way Redis reads them (`string2ll` in its util.c): the one parser
//! behind RESP lengths, integer replies and numeric command arguments.

/// Longest text that can be a valid integer: a `-` and the 19 digits of `i64::MIN`.
pub(crate) const MAX_INT_LEN: usize = 20;

/// Parses `text` as Redis' `string2ll` does: an optional `-` (no `+`), then digits with no
/// leading zero, `0` alone being the only number that starts with one (so `-0` is refused), no
/// blanks anywhere, and a value within the `i64` range. `None` for anything else, the empty
/// text included.
#[inline]
pub(crate) fn string2ll(text: &[u8]) -> Option<i64> {
    if text.len() > MAX_INT_LEN {
        return None;
    }
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    match digits {
        [b'1'..=b'9', ..] => {}
        [b'0'] if !negative => return Some(0),
        _ => return None,
    }
    let mut magnitude: u64 = 0;
    for &b in digits {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        magnitude = magnitude.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    if negative {
        // 2^63 fits only on the negative side.
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Redis 7.0's `string2ll` answers, checked against its util.c and its own unit test
    /// (and, for `-0`, `007` and `+1`, against a running redis-server 7.0.15).
    #[test]
    fn golden_cases_from_redis() {
        let accepted: [(&[u8], i64); 9] = [
            (b"0", 0),
            (b"1", 1),
            (b"-1", -1),
            (b"99", 99),
            (b"-99", -99),
            (b"9223372036854775807", i64::MAX),
            (b"-9223372036854775808", i64::MIN),
            (b"1000000000000000000", 1_000_000_000_000_000_000),
            (b"-9223372036854775807", -i64::MAX),
        ];
        for (text, value) in accepted {
            assert_eq!(
                string2ll(text),
                Some(value),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        let refused: [&[u8]; 16] = [
            b"",
            b"-",
            b"-0",
            b"00",
            b"007",
            b"-007",
            b"+1",
            b"+0",
            b" 1",
            b"1 ",
            b"1\r",
            b"1x",
            b"0x10",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"18446744073709551616",
        ];
        for text in refused {
            assert_eq!(string2ll(text), None, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn longer_than_any_i64_is_refused_without_scanning() {
        assert_eq!(string2ll(&[b'1'; MAX_INT_LEN + 1]), None);
        assert_eq!(string2ll(b"-00000000000000000001"), None);
        assert_eq!(string2ll(b"99999999999999999999"), None);
    }

    /// The cases the request parser's own copy was tested with.
    #[test]
    fn string2ll_matches_redis() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"-1"), Some(-1));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"00",
            b"01",
            b"+1",
            b" 1",
            b"1a",
            b"9223372036854775808",
        ] {
            assert_eq!(string2ll(bad), None, "{bad:?}");
        }
    }

    /// The cases the key-spec reader's own copy was tested with.
    #[test]
    fn keyspec_cases_are_strict_like_redis() {
        assert_eq!(string2ll(b"0"), Some(0));
        assert_eq!(string2ll(b"12"), Some(12));
        assert_eq!(string2ll(b"-7"), Some(-7));
        assert_eq!(string2ll(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string2ll(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"-0",
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"1x",
            b"9223372036854775808",
        ] {
            assert_eq!(string2ll(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
