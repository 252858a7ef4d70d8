//! Reads predixy's configuration syntax into a tree of directives: one `Key value` per line,
//! `Key [value] {` opens a block that a lone `}` closes, `#` starts a comment, a value may be
//! double-quoted (with `\` escapes), and `Include file` splices another file in place.

use super::PredixyError;

/// How deep `Include` may nest; predixy configs use one level.
const MAX_INCLUDE_DEPTH: usize = 8;

/// One directive: `key value`, with its block when it opened one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Directive {
    pub key: String,
    pub value: String,
    /// `file:line`, for messages.
    pub at: String,
    /// The directives inside `{ ... }`; `None` when the line opened no block.
    pub block: Option<Vec<Directive>>,
}

impl Directive {
    /// Whether the key is `name`, ignoring case as predixy does.
    pub fn is(&self, name: &str) -> bool {
        self.key.eq_ignore_ascii_case(name)
    }
}

/// The directives of `text` (labelled `file` in messages), with includes followed through
/// `included`.
pub(super) fn parse(
    text: &str,
    file: &str,
    included: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Directive>, PredixyError> {
    let mut tree = Tree::default();
    let mut chain = vec![file.to_string()];
    read_file(text, file, included, &mut tree, &mut chain)?;
    if let Some(open) = tree.open.last() {
        return Err(PredixyError::Syntax {
            at: open.at.clone(),
            message: format!("block `{}` is never closed", open.key),
        });
    }
    Ok(tree.root)
}

/// The directives read so far and the blocks still open.
#[derive(Default)]
struct Tree {
    root: Vec<Directive>,
    open: Vec<Directive>,
}

impl Tree {
    fn add(&mut self, d: Directive) {
        match self.open.last_mut().and_then(|top| top.block.as_mut()) {
            Some(children) => children.push(d),
            None => self.root.push(d),
        }
    }
}

fn read_file(
    text: &str,
    file: &str,
    included: &dyn Fn(&str) -> Option<String>,
    tree: &mut Tree,
    chain: &mut Vec<String>,
) -> Result<(), PredixyError> {
    let depth_at_start = tree.open.len();
    for (i, raw) in text.lines().enumerate() {
        let at = format!("{file}:{}", i + 1);
        let syntax = |message: String| PredixyError::Syntax {
            at: at.clone(),
            message,
        };
        match tokenize(raw).map_err(syntax)? {
            Line::Empty => {}
            Line::End => {
                if tree.open.len() <= depth_at_start {
                    return Err(syntax("`}` closes no block".into()));
                }
                if let Some(done) = tree.open.pop() {
                    tree.add(done);
                }
            }
            Line::Entry { key, value, opens } => {
                if key.eq_ignore_ascii_case("Include") && !opens {
                    include(&value, &at, included, tree, chain)?;
                    continue;
                }
                let d = Directive {
                    key,
                    value,
                    at,
                    block: opens.then(Vec::new),
                };
                if opens {
                    tree.open.push(d);
                } else {
                    tree.add(d);
                }
            }
        }
    }
    if tree.open.len() > depth_at_start
        && let Some(open) = tree.open.last()
        && chain.len() > 1
    {
        // A block must end in the file that opened it; predixy allowed otherwise by accident.
        return Err(PredixyError::Syntax {
            at: open.at.clone(),
            message: format!("block `{}` is not closed in its own file", open.key),
        });
    }
    Ok(())
}

fn include(
    name: &str,
    at: &str,
    included: &dyn Fn(&str) -> Option<String>,
    tree: &mut Tree,
    chain: &mut Vec<String>,
) -> Result<(), PredixyError> {
    if chain.iter().any(|f| f == name) {
        return Err(PredixyError::Include {
            at: at.to_string(),
            file: name.to_string(),
            reason: format!("include cycle ({} → {name})", chain.join(" → ")),
        });
    }
    if chain.len() > MAX_INCLUDE_DEPTH {
        return Err(PredixyError::Include {
            at: at.to_string(),
            file: name.to_string(),
            reason: format!("includes nest deeper than {MAX_INCLUDE_DEPTH}"),
        });
    }
    let text = included(name).ok_or_else(|| PredixyError::Include {
        at: at.to_string(),
        file: name.to_string(),
        reason: "the file could not be read".into(),
    })?;
    chain.push(name.to_string());
    let result = read_file(&text, name, included, tree, chain);
    chain.pop();
    result
}

/// One line of the file, classified.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    Empty,
    End,
    Entry {
        key: String,
        value: String,
        opens: bool,
    },
}

fn tokenize(raw: &str) -> Result<Line, String> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(Line::Empty);
    }
    let key_end = line
        .find(|c: char| c.is_whitespace() || c == '#')
        .unwrap_or(line.len());
    let (key, rest) = line.split_at(key_end);
    let rest = rest.trim_start();
    if key == "}" {
        return if is_blank(rest) {
            Ok(Line::End)
        } else {
            Err(format!("unexpected `{rest}` after `}}`"))
        };
    }
    // `Servers{` with no space before the brace.
    if let Some(bare) = key.strip_suffix('{') {
        if !is_blank(rest) {
            return Err(format!("unexpected `{rest}` after `{{`"));
        }
        return Ok(entry(bare, String::new(), true));
    }
    if let Some(quoted) = rest.strip_prefix('"') {
        let (value, after) = unquote(quoted)?;
        let after = after.trim_start();
        return match after.strip_prefix('{') {
            Some(tail) if is_blank(tail) => Ok(entry(key, value, true)),
            None if is_blank(after) => Ok(entry(key, value, false)),
            _ => Err(format!("unexpected `{after}` after a quoted value")),
        };
    }
    let value = rest.split('#').next().unwrap_or("").trim_end();
    Ok(match value.strip_suffix('{') {
        Some(v) => entry(key, v.trim_end().to_string(), true),
        None => entry(key, value.to_string(), false),
    })
}

fn entry(key: &str, value: String, opens: bool) -> Line {
    Line::Entry {
        key: key.to_string(),
        value,
        opens,
    }
}

fn is_blank(rest: &str) -> bool {
    let rest = rest.trim();
    rest.is_empty() || rest.starts_with('#')
}

/// The content of a quoted value (after its opening quote) and the text after its closing
/// quote. A backslash takes the next character literally.
fn unquote(s: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, escaped)) => value.push(escaped),
                None => break,
            },
            _ => value.push(c),
        }
    }
    Err("a quoted value has no closing quote".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_includes(_: &str) -> Option<String> {
        None
    }

    fn e(key: &str, value: &str, opens: bool) -> Line {
        entry(key, value.to_string(), opens)
    }

    #[test]
    fn lines() {
        let table = [
            ("", Line::Empty),
            ("   # note", Line::Empty),
            ("WorkerThreads 4", e("WorkerThreads", "4", false)),
            (
                "  Bind 0.0.0.0:7617   # public",
                e("Bind", "0.0.0.0:7617", false),
            ),
            ("Servers {", e("Servers", "", true)),
            ("Servers{", e("Servers", "", true)),
            ("DC east {  # first", e("DC", "east", true)),
            ("    + 10.1", e("+", "10.1", false)),
            ("ReadPolicy {", e("ReadPolicy", "", true)),
            ("    east 50 2", e("east", "50 2", false)),
            ("}", Line::End),
            ("  }  # done", Line::End),
            (
                "Auth \"a #pass\\\" word\" {",
                e("Auth", "a #pass\" word", true),
            ),
            ("Password \"x y\"", e("Password", "x y", false)),
            ("LocalDC", e("LocalDC", "", false)),
        ];
        for (raw, want) in table {
            assert_eq!(tokenize(raw), Ok(want), "{raw:?}");
        }
        for bad in ["} x", "Auth \"open", "Auth \"x\" y", "Servers{ x"] {
            assert!(tokenize(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn blocks_nest() {
        let text = "A 1\nB {\n  C 2\n  D x {\n    + y\n  }\n}\nE\n";
        let tree = parse(text, "m", &no_includes).unwrap();
        assert_eq!(tree.len(), 3);
        let b = &tree[1];
        assert!(b.is("b") && b.at == "m:2");
        let inner = b.block.as_ref().unwrap();
        assert_eq!(inner[1].value, "x");
        assert_eq!(inner[1].block.as_ref().unwrap()[0].value, "y");
        assert_eq!(tree[2].block, None);
    }

    #[test]
    fn unbalanced_blocks() {
        let err = parse("A {\n B 1\n", "m", &no_includes).unwrap_err();
        assert_eq!(err.to_string(), "m:1: block `A` is never closed");
        let err = parse("A 1\n}\n", "m", &no_includes).unwrap_err();
        assert_eq!(err.to_string(), "m:2: `}` closes no block");
    }

    #[test]
    fn includes_splice_in_place() {
        let files = |name: &str| match name {
            "pool.conf" => Some("P {\n  Include servers.conf\n}\n".to_string()),
            "servers.conf" => Some("+ a:1\n+ b:2\n".to_string()),
            "open.conf" => Some("X {\n".to_string()),
            "close.conf" => Some("}\n".to_string()),
            "self.conf" => Some("include self.conf\n".to_string()),
            _ => None,
        };
        let tree = parse("Include pool.conf\nZ 1\n", "main", &files).unwrap();
        let servers = tree[0].block.as_ref().unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].at, "servers.conf:2");
        assert!(tree[1].is("z"));
        let err = parse("Include nope.conf\n", "main", &files).unwrap_err();
        assert_eq!(
            err.to_string(),
            "main:1: Include nope.conf: the file could not be read"
        );
        let err = parse("Include self.conf\n", "main", &files).unwrap_err();
        assert!(err.to_string().contains("include cycle"), "{err}");
        let err = parse("Include open.conf\n}\n", "main", &files).unwrap_err();
        assert!(
            err.to_string().contains("not closed in its own file"),
            "{err}"
        );
        let err = parse("X {\nInclude close.conf\n", "main", &files).unwrap_err();
        assert!(err.to_string().contains("closes no block"), "{err}");
    }
}
