//! Durations ("500ms", "1.5s", "2m") and byte sizes ("64kb", "512mb") as written in the config,
//! with the serde deserializers the config types use.

use std::fmt;
use std::time::Duration;

use serde::Deserializer;
use serde::de::{self, Visitor};

use super::errors::UnitError;

const DURATION_UNITS: &str = "ns, us, ms, s, m, h";
const SIZE_UNITS: &str = "b, kb, mb, gb, tb";

/// Nanoseconds per duration unit, largest first (the order `format_duration` tries them in).
const DURATION_TABLE: [(&str, u128); 6] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// Bytes per size unit, largest first; binary multiples (1kb = 1024 bytes).
const SIZE_TABLE: [(&str, u64); 5] = [
    ("tb", 1 << 40),
    ("gb", 1 << 30),
    ("mb", 1 << 20),
    ("kb", 1 << 10),
    ("b", 1),
];

/// Reads a duration such as `500ms`, `1s`, `1.5s`, `2m`, `1h` or `0`.
///
/// A bare number is refused unless it is zero: `timeout: 5` is ambiguous, and guessing seconds
/// or milliseconds is how outages start.
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let value = text.trim();
    let (number, unit) = split_number(value)?;
    let unit = unit.to_ascii_lowercase();
    if unit.is_empty() {
        return if number.chars().all(|c| c == '0' || c == '.') {
            Ok(Duration::ZERO)
        } else {
            Err(UnitError::MissingUnit(value.to_string()))
        };
    }
    let Some(&(_, per_unit)) = DURATION_TABLE.iter().find(|(name, _)| *name == unit) else {
        return Err(UnitError::UnknownUnit {
            value: value.to_string(),
            unit,
            expected: DURATION_UNITS,
        });
    };
    let nanos = scale_decimal(number, per_unit).ok_or_else(|| too_large(value))?;
    let nanos = u64::try_from(nanos).map_err(|_| too_large(value))?;
    Ok(Duration::from_nanos(nanos))
}

/// Reads a size such as `512mb`, `64kb`, `1gb`, `100b` (any case) or a plain number of bytes.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let value = text.trim();
    let (number, unit) = split_number(value)?;
    if number.contains('.') {
        return Err(UnitError::Fraction(value.to_string()));
    }
    let unit = unit.to_ascii_lowercase();
    let per_unit = if unit.is_empty() {
        1
    } else {
        match SIZE_TABLE.iter().find(|(name, _)| *name == unit) {
            Some(&(_, per_unit)) => per_unit,
            None => {
                return Err(UnitError::UnknownUnit {
                    value: value.to_string(),
                    unit,
                    expected: SIZE_UNITS,
                });
            }
        }
    };
    let count: u64 = number.parse().map_err(|_| too_large(value))?;
    count.checked_mul(per_unit).ok_or_else(|| too_large(value))
}

/// Writes a duration in the largest unit that represents it exactly (`1500ms`, `2m`, `0`).
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0".to_string();
    }
    for (name, per_unit) in DURATION_TABLE {
        if nanos.is_multiple_of(per_unit) {
            return format!("{}{name}", nanos / per_unit);
        }
    }
    format!("{nanos}ns")
}

/// Writes a size in the largest binary unit that represents it exactly (`64kb`, `100b`, `0`).
pub fn format_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0".to_string();
    }
    for (name, per_unit) in SIZE_TABLE {
        if bytes.is_multiple_of(per_unit) {
            return format!("{}{name}", bytes / per_unit);
        }
    }
    format!("{bytes}b")
}

/// Splits `12.5ms` into (`12.5`, `ms`), checking the number part's shape.
fn split_number(value: &str) -> Result<(&str, &str), UnitError> {
    if value.is_empty() {
        return Err(UnitError::Empty);
    }
    if value.starts_with('-') {
        return Err(UnitError::Negative(value.to_string()));
    }
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(end);
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let dots = number.len() - digits;
    if digits == 0 || dots > 1 || number.starts_with('.') || number.ends_with('.') {
        return Err(UnitError::InvalidNumber(value.to_string()));
    }
    Ok((number, unit.trim_start()))
}

/// `number` (digits with at most one dot) times `per_unit`, exactly, in integer arithmetic.
fn scale_decimal(number: &str, per_unit: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    // Digits past the 18th are far below a nanosecond for any unit here; dropping them keeps
    // the arithmetic inside u128.
    let fraction = &fraction[..fraction.len().min(18)];
    let whole: u128 = whole.parse().ok()?;
    let mut total = whole.checked_mul(per_unit)?;
    if !fraction.is_empty() {
        let digits: u128 = fraction.parse().ok()?;
        let scale = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
        total = total.checked_add(digits.checked_mul(per_unit)? / scale)?;
    }
    Some(total)
}

fn too_large(value: &str) -> UnitError {
    UnitError::TooLarge(value.to_string())
}

/// Serde: a duration field (`deserialize_with = "units::duration"`).
pub(crate) fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(DurationVisitor)
}

/// Serde: a size field stored as `usize`.
pub(crate) fn size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    let bytes = deserializer.deserialize_any(SizeVisitor)?;
    usize::try_from(bytes).map_err(|_| de::Error::custom("size does not fit this machine"))
}

/// Serde: a size field stored as `u64`.
pub(crate) fn size_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    deserializer.deserialize_any(SizeVisitor)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration like 500ms, 1s, 2m or 1h")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse_duration(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
        if v == 0.0 {
            Ok(Duration::ZERO)
        } else {
            Err(E::custom(UnitError::MissingUnit(v.to_string())))
        }
    }
}

struct SizeVisitor;

impl Visitor<'_> for SizeVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a size like 512mb, 64kb or a number of bytes")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        parse_size(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(UnitError::Negative(v.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("1s"), Ok(ms(1000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1500)));
        assert_eq!(parse_duration("0.1s"), Ok(ms(100)));
        assert_eq!(parse_duration("2m"), Ok(ms(120_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration(" 3 S "), Ok(ms(3000)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0.0"), Ok(Duration::ZERO));
    }

    #[test]
    fn durations_rejected() {
        assert_eq!(parse_duration("5"), Err(UnitError::MissingUnit("5".into())));
        assert!(
            parse_duration("5")
                .unwrap_err()
                .to_string()
                .contains("use a unit, e.g. 500ms")
        );
        assert_eq!(parse_duration(""), Err(UnitError::Empty));
        assert_eq!(
            parse_duration("-1s"),
            Err(UnitError::Negative("-1s".into()))
        );
        assert_eq!(
            parse_duration("s"),
            Err(UnitError::InvalidNumber("s".into()))
        );
        assert_eq!(
            parse_duration(".5s"),
            Err(UnitError::InvalidNumber(".5s".into()))
        );
        assert_eq!(
            parse_duration("1.2.3s"),
            Err(UnitError::InvalidNumber("1.2.3s".into()))
        );
        assert!(matches!(
            parse_duration("3d"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("1m30s"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert_eq!(
            parse_duration("99999999999999999999h"),
            Err(UnitError::TooLarge("99999999999999999999h".into()))
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512mb"), Ok(512 << 20));
        assert_eq!(parse_size("64kb"), Ok(64 << 10));
        assert_eq!(parse_size("64KB"), Ok(65536));
        assert_eq!(parse_size("1gb"), Ok(1 << 30));
        assert_eq!(parse_size("1Gb"), Ok(1 << 30));
        assert_eq!(parse_size("100b"), Ok(100));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("2 mb"), Ok(2 << 20));
    }

    #[test]
    fn sizes_rejected() {
        assert_eq!(
            parse_size("1.5mb"),
            Err(UnitError::Fraction("1.5mb".into()))
        );
        assert_eq!(parse_size("-1"), Err(UnitError::Negative("-1".into())));
        assert!(matches!(
            parse_size("10m"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_size("10xb"),
            Err(UnitError::UnknownUnit { .. })
        ));
        assert_eq!(parse_size("mb"), Err(UnitError::InvalidNumber("mb".into())));
        assert_eq!(
            parse_size("99999999999tb"),
            Err(UnitError::TooLarge("99999999999tb".into()))
        );
    }

    #[test]
    fn formatting_round_trips() {
        for d in [
            ms(0),
            ms(500),
            ms(1000),
            ms(1500),
            ms(120_000),
            ms(3_600_000),
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(ms(1500)), "1500ms");
        assert_eq!(format_duration(ms(120_000)), "2m");
        assert_eq!(format_duration(Duration::from_nanos(1_001)), "1001ns");
        for b in [0, 100, 1024, 65536, 512 << 20, 1 << 30, 1025] {
            assert_eq!(parse_size(&format_size(b)), Ok(b));
        }
        assert_eq!(format_size(512 << 20), "512mb");
        assert_eq!(format_size(1025), "1025b");
    }

    #[derive(serde::Deserialize, Debug)]
    struct Holder {
        #[serde(deserialize_with = "duration")]
        d: Duration,
        #[serde(deserialize_with = "size")]
        s: usize,
    }

    fn holder(yaml: &str) -> Result<Holder, String> {
        serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn serde_accepts_strings_and_zero() {
        let h = holder("d: 1.5s\ns: 64kb").unwrap();
        assert_eq!((h.d, h.s), (ms(1500), 65536));
        let h = holder("d: 0\ns: 1024").unwrap();
        assert_eq!((h.d, h.s), (Duration::ZERO, 1024));
        let h = holder("d: \"0\"\ns: \"1024\"").unwrap();
        assert_eq!((h.d, h.s), (Duration::ZERO, 1024));
    }

    #[test]
    fn serde_rejects_bare_numbers_and_negatives() {
        let err = holder("d: 5\ns: 1").unwrap_err();
        assert!(err.contains("use a unit, e.g. 500ms"), "{err}");
        let err = holder("d: 2.5\ns: 1").unwrap_err();
        assert!(err.contains("use a unit, e.g. 500ms"), "{err}");
        let err = holder("d: 1s\ns: -3").unwrap_err();
        assert!(err.contains("negative"), "{err}");
        let err = holder("d: [1]\ns: 1").unwrap_err();
        assert!(err.contains("a duration like 500ms"), "{err}");
    }
}
