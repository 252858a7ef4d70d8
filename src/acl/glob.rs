//! Redis-compatible glob matching (`stringmatchlen`): `*`, `?`, `[a-z]`, `[^x]`, `\` escapes.

/// The byte at `i`, or 0 past the end (Redis reads the string's NUL terminator there).
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// True when `text` matches `pattern` exactly as Redis' case-sensitive `stringmatchlen` decides
/// (ACL key and channel patterns, KEYS, SCAN MATCH).
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    let mut skip_longer = false;
    match_from(pattern, text, &mut skip_longer, 0)
}

fn match_from(pattern: &[u8], text: &[u8], skip_longer: &mut bool, nesting: u32) -> bool {
    // Redis refuses patterns nested deeper than this rather than recursing without bound.
    if nesting > 1000 {
        return false;
    }
    let (mut p, mut s) = (0usize, 0usize);
    let (plen, slen) = (pattern.len(), text.len());
    while p < plen && s < slen {
        match pattern[p] {
            b'*' => {
                while p < plen && at(pattern, p + 1) == b'*' {
                    p += 1;
                }
                if plen - p == 1 {
                    return true;
                }
                while s < slen {
                    if match_from(&pattern[p + 1..], &text[s..], skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s += 1;
                }
                // Nothing after this star matches anywhere in the rest: no earlier star can
                // help either.
                *skip_longer = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                p += 1;
                let negate = at(pattern, p) == b'^';
                if negate {
                    p += 1;
                }
                let c = text[s];
                let mut hit = false;
                loop {
                    let left = plen.saturating_sub(p);
                    let cur = at(pattern, p);
                    if cur == b'\\' && left >= 2 {
                        p += 1;
                        if at(pattern, p) == c {
                            hit = true;
                        }
                    } else if cur == b']' {
                        break;
                    } else if left == 0 {
                        // Unterminated class: step back so the shared advance below ends it.
                        p -= 1;
                        break;
                    } else if left >= 3 && at(pattern, p + 1) == b'-' {
                        // Redis compares plain (signed) chars.
                        let (mut lo, mut hi) = (cur as i8, at(pattern, p + 2) as i8);
                        if lo > hi {
                            std::mem::swap(&mut lo, &mut hi);
                        }
                        p += 2;
                        if (lo..=hi).contains(&(c as i8)) {
                            hit = true;
                        }
                    } else if cur == c {
                        hit = true;
                    }
                    p += 1;
                }
                if hit == negate {
                    return false;
                }
                s += 1;
            }
            other => {
                let lit = if other == b'\\' && plen - p >= 2 {
                    p += 1;
                    pattern[p]
                } else {
                    other
                };
                if lit != text[s] {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == slen {
            while at(pattern, p) == b'*' && p < plen {
                p += 1;
            }
            break;
        }
    }
    p >= plen && s == slen
}

#[cfg(test)]
mod tests {
    use super::matches;

    /// (pattern, text, Redis' answer), answers taken from redis-server 7.0.15: `ACL DRYRUN` of a
    /// user with `~pattern +get` on `GET text`. A lone `*` is left out: Redis short-circuits it
    /// (`allkeys`) before matching, and so does [`crate::acl::users`].
    const GOLDEN: &[(&str, &str, bool)] = &[
        ("*", "anything", true),
        ("", "", true),
        ("", "a", false),
        ("a", "", false),
        ("user:*", "user:1", true),
        ("user:*", "user:", true),
        ("user:*", "users:1", false),
        ("h?llo", "hello", true),
        ("h?llo", "hllo", false),
        ("h*llo", "hllo", true),
        ("h*llo", "heeeello", true),
        ("h[ae]llo", "hallo", true),
        ("h[ae]llo", "hillo", false),
        ("h[^e]llo", "hallo", true),
        ("h[^e]llo", "hello", false),
        ("h[a-b]llo", "hbllo", true),
        ("h[a-b]llo", "hcllo", false),
        ("h[b-a]llo", "hallo", true),
        ("h\\*llo", "h*llo", true),
        ("h\\*llo", "hello", false),
        ("[\\]]", "]", true),
        ("[\\-]", "-", true),
        ("[a-]", "-", false),
        ("[a-]", "a", true),
        ("[abc", "a", true),
        ("[abc", "b", true),
        ("[", "[", false),
        ("a\\", "a\\", true),
        ("\\", "\\", true),
        ("*a*b", "xaxb", true),
        ("*a*b", "xaxbx", false),
        ("a*", "a", true),
        ("a**", "a", true),
        ("**", "", false),
        ("a*b*c", "abc", true),
        ("a*b*c", "acb", false),
        ("?", "", false),
        ("[^a]", "", false),
        ("{a}*", "{a}1", true),
    ];

    #[test]
    fn golden_cases_match_redis() {
        for (pattern, text, want) in GOLDEN {
            assert_eq!(
                matches(pattern.as_bytes(), text.as_bytes()),
                *want,
                "pattern {pattern:?} text {text:?}"
            );
        }
    }

    #[test]
    fn pathological_pattern_is_fast() {
        let pattern = "a*".repeat(30) + "b";
        let text = "a".repeat(60);
        assert!(!matches(pattern.as_bytes(), text.as_bytes()));
    }

    #[test]
    fn high_bytes_compare_as_signed_chars() {
        // Redis' range compares `char`: 0xff is -1, below 'a'.
        assert!(matches(b"[\xff-a]", b"0"));
        assert!(!matches(b"[a-z]", b"\xe9"));
    }
}
