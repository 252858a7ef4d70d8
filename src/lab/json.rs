//! A tiny JSON value and writer for the drill report (the crate has no JSON dependency, and
//! the report needs nothing more than objects, arrays, strings and numbers).

use std::fmt::Write as _;

/// A JSON value; objects keep their insertion order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number; non-finite numbers are written as `null`.
    Num(f64),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// An object from `(key, value)` pairs.
    pub fn obj<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Obj(pairs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A string.
    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// A whole number.
    pub fn int(n: impl Into<u64>) -> Json {
        Json::Num(n.into() as f64)
    }

    /// A number rounded to 3 decimals (enough for milliseconds and shares).
    pub fn num(x: f64) -> Json {
        Json::Num((x * 1000.0).round() / 1000.0)
    }

    /// `null` for `None`.
    pub fn opt(v: Option<Json>) -> Json {
        v.unwrap_or(Json::Null)
    }

    /// The value written compactly.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, None, 0);
        out
    }

    /// The value written with two-space indentation.
    pub fn to_pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, Some(2), 0);
        out.push('\n');
        out
    }

    fn write(&self, out: &mut String, indent: Option<usize>, level: usize) {
        let newline = |out: &mut String, level: usize| {
            if let Some(step) = indent {
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', step * level));
            }
        };
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(x) if !x.is_finite() => out.push_str("null"),
            Json::Num(x) if x.fract() == 0.0 && x.abs() < 9e15 => {
                let _ = write!(out, "{}", *x as i64);
            }
            Json::Num(x) => {
                let _ = write!(out, "{x}");
            }
            Json::Str(s) => escape(out, s),
            Json::Arr(items) => {
                // Arrays of plain numbers stay on one line: time lines would be long otherwise.
                let flat = items.iter().all(|i| matches!(i, Json::Num(_) | Json::Null));
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    if !flat {
                        newline(out, level + 1);
                    }
                    item.write(out, indent, level + 1);
                }
                if !flat && !items.is_empty() {
                    newline(out, level);
                }
                out.push(']');
            }
            Json::Obj(pairs) => {
                out.push('{');
                for (i, (key, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, level + 1);
                    escape(out, key);
                    out.push(':');
                    if indent.is_some() {
                        out.push(' ');
                    }
                    value.write(out, indent, level + 1);
                }
                if !pairs.is_empty() {
                    newline(out, level);
                }
                out.push('}');
            }
        }
    }
}

fn escape(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_type() {
        let v = Json::obj([
            ("a", Json::Null),
            ("b", Json::Bool(true)),
            ("c", Json::int(3u32)),
            ("d", Json::num(0.12345)),
            ("e", Json::str("x\"y\n\u{1}")),
            ("f", Json::Arr(vec![Json::int(1u8), Json::Num(f64::NAN)])),
            ("g", Json::Obj(vec![])),
        ]);
        assert_eq!(
            v.to_text(),
            r#"{"a":null,"b":true,"c":3,"d":0.123,"e":"x\"y\n\u0001","f":[1,null],"g":{}}"#
        );
        let pretty = v.to_pretty();
        assert!(pretty.contains("\n  \"a\": null,"), "{pretty}");
        assert!(pretty.contains("\"f\": [1,null]"), "{pretty}");
    }

    #[test]
    fn pretty_output_is_valid_yaml_too() {
        let v = Json::obj([(
            "list",
            Json::Arr(vec![Json::obj([("k", Json::str("v: w"))])]),
        )]);
        let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&v.to_pretty()).unwrap();
        assert_eq!(parsed["list"][0]["k"].as_str(), Some("v: w"));
    }
}
