//! Finds the line of a key path (`datacenters.east.cidrs[1]`, `shards[1].replicas[0]`) in
//! block-style YAML text, so semantic errors can point at a line the way parse errors do; both
//! the gateway config and the lab's topology file use it.
//!
//! This is a small indentation scan, not a YAML parser: it follows block mappings and block
//! sequences, including a mapping that starts on its item's line (`- name: east`); inside flow
//! style (`{ a: 1 }`, `[x, y]`) it stops and answers the line of the deepest key it did find,
//! which is the line holding the flow collection.

/// One component of a key path.
#[derive(Debug, PartialEq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// A node of the scan: a non-blank, non-comment line, or one part of an item line. Its 1-based
/// line number, the column it starts at, and its trimmed text.
struct Line<'a> {
    number: usize,
    indent: usize,
    text: &'a str,
}

/// The 1-based line of `path` in `yaml`, or of its deepest enclosing key that could be found;
/// `None` when not even the first key is there.
pub(crate) fn line_of(yaml: &str, path: &str) -> Option<usize> {
    let steps = split_path(path)?;
    let mut lines = Vec::new();
    for (i, raw) in yaml.lines().enumerate() {
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') || text == "---" {
            continue;
        }
        let indent = raw.len() - raw.trim_start().len();
        push_nodes(&mut lines, i + 1, indent, text);
    }

    // `parent` is the line index of the node we are inside, `None` at the document root.
    let mut parent: Option<usize> = None;
    let mut found = None;
    for step in steps {
        let next = match step {
            Step::Key(key) => find_key(&lines, parent, key),
            Step::Index(index) => find_item(&lines, parent, index),
        };
        match next {
            Some(at) => {
                found = Some(lines[at].number);
                parent = Some(at);
            }
            None => break,
        }
    }
    found
}

/// Adds the nodes of one line. An item with content (`- name: east`, `- west`) becomes a bare
/// `-` at the dash's column and its content at the content's own column, so the keys of a
/// mapping that starts on the item line line up with the keys below it.
fn push_nodes<'a>(lines: &mut Vec<Line<'a>>, number: usize, mut indent: usize, mut text: &'a str) {
    while let Some(content) = text.strip_prefix("- ") {
        lines.push(Line {
            number,
            indent,
            text: "-",
        });
        let rest = content.trim_start();
        indent += text.len() - rest.len();
        text = rest;
    }
    lines.push(Line {
        number,
        indent,
        text,
    });
}

/// Splits `a.b[2].c` into keys and indices; `None` for an empty or malformed path.
fn split_path(path: &str) -> Option<Vec<Step<'_>>> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !key.is_empty() {
            steps.push(Step::Key(key));
        }
        while let Some(inner) = rest.strip_prefix('[') {
            let (index, after) = inner.split_once(']')?;
            steps.push(Step::Index(index.parse().ok()?));
            rest = after;
        }
        if !rest.is_empty() {
            return None;
        }
    }
    (!steps.is_empty()).then_some(steps)
}

/// The lines belonging to the block under `parent`: everything after it until a line that is
/// indented no deeper. A sequence may sit at its key's own indentation (`key:\n- a`), so
/// `- ` lines at the parent's indentation are included when the parent is a mapping key.
fn children<'a, 'b>(
    lines: &'b [Line<'a>],
    parent: Option<usize>,
) -> impl Iterator<Item = (usize, &'b Line<'a>)> {
    let (start, indent, key_parent) = match parent {
        None => (0, None, false),
        Some(at) => (at + 1, Some(lines[at].indent), !is_item(lines[at].text)),
    };
    lines
        .iter()
        .enumerate()
        .skip(start)
        .take_while(move |(_, line)| match indent {
            None => true,
            Some(indent) => {
                line.indent > indent || (key_parent && line.indent == indent && is_item(line.text))
            }
        })
}

/// Whether a node is the dash of a sequence item (item lines are split by [`push_nodes`]).
fn is_item(text: &str) -> bool {
    text == "-"
}

/// The line index of `key:` directly under `parent`.
fn find_key(lines: &[Line<'_>], parent: Option<usize>, key: &str) -> Option<usize> {
    let mut level = None;
    for (at, line) in children(lines, parent) {
        // The first line of the block sets the indentation its direct keys share.
        let indent = *level.get_or_insert(line.indent);
        if line.indent == indent && starts_with_key(line.text, key) {
            return Some(at);
        }
    }
    None
}

/// The line index of the `index`-th `- ` item directly under `parent`.
fn find_item(lines: &[Line<'_>], parent: Option<usize>, index: usize) -> Option<usize> {
    let mut level = None;
    let mut seen = 0;
    for (at, line) in children(lines, parent) {
        let indent = *level.get_or_insert(line.indent);
        if line.indent == indent && is_item(line.text) {
            if seen == index {
                return Some(at);
            }
            seen += 1;
        }
    }
    None
}

/// Whether `text` begins with `key:` (the key optionally quoted) followed by a space or the end.
fn starts_with_key(text: &str, key: &str) -> bool {
    let rest = [("\"", "\""), ("'", "'"), ("", "")]
        .iter()
        .find_map(|(open, close)| {
            text.strip_prefix(open)?
                .strip_prefix(key)?
                .strip_prefix(close)?
                .strip_prefix(':')
        });
    rest.is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
# comment
listen: 127.0.0.1:7617
cluster:
  # seeds below
  seeds:
    - 127.0.0.1:7001

    - 127.0.0.1:7002
  refresh_interval: 1s
client: { timeout: 300s }
datacenters:
  east:
    cidrs: [10.1.0.0/16]
    nodes:
    - a:1
    - b:2
  \"west\":
    cidrs:
      - 10.2.0.0/16
latency_ms:
  east: { east: 0.3 }
listen_extra: x
";

    #[test]
    fn finds_block_keys_and_items() {
        assert_eq!(line_of(YAML, "listen"), Some(2));
        assert_eq!(line_of(YAML, "cluster"), Some(3));
        assert_eq!(line_of(YAML, "cluster.seeds"), Some(5));
        assert_eq!(line_of(YAML, "cluster.seeds[0]"), Some(6));
        assert_eq!(line_of(YAML, "cluster.seeds[1]"), Some(8));
        assert_eq!(line_of(YAML, "cluster.refresh_interval"), Some(9));
        assert_eq!(line_of(YAML, "datacenters.east.nodes[1]"), Some(16));
        assert_eq!(line_of(YAML, "datacenters.west.cidrs[0]"), Some(19));
        assert_eq!(line_of(YAML, "listen_extra"), Some(22));
    }

    #[test]
    fn flow_style_answers_the_enclosing_line() {
        assert_eq!(line_of(YAML, "client.timeout"), Some(10));
        assert_eq!(line_of(YAML, "datacenters.east.cidrs[0]"), Some(13));
        assert_eq!(line_of(YAML, "latency_ms.east.east"), Some(21));
        assert_eq!(line_of(YAML, "cluster.seeds[7]"), Some(5));
    }

    #[test]
    fn missing_keys() {
        assert_eq!(line_of(YAML, "workers"), None);
        assert_eq!(line_of(YAML, "cluster.password"), Some(3));
        assert_eq!(line_of(YAML, ""), None);
        assert_eq!(line_of(YAML, "a[x]"), None);
        assert_eq!(line_of("", "listen"), None);
    }

    #[test]
    fn does_not_descend_into_siblings() {
        let yaml = "a:\n  x: 1\nb:\n  y: 2\n";
        assert_eq!(line_of(yaml, "a.y"), Some(1));
        assert_eq!(line_of(yaml, "b.y"), Some(4));
    }

    #[test]
    fn splits_paths() {
        assert_eq!(
            split_path("a.b[2][3].c"),
            Some(vec![
                Step::Key("a"),
                Step::Key("b"),
                Step::Index(2),
                Step::Index(3),
                Step::Key("c"),
            ])
        );
        assert_eq!(split_path("a[1"), None);
        assert_eq!(split_path("a[1]x"), None);
    }

    /// A topology file: mappings inside sequence items, flow items, a comment between items.
    const LAB_TEXT: &str = "\
name: t
datacenters:
  - { name: east, cidr: 127.0.1.0/24 }
  # a comment
  - name: west
    cidr: 127.0.2.0/24
latency_ms:
  east: { east: 1 }
shards:
- master: east
  replicas:
    - west
    - eu
gateway_config:
  breaker:
    failure_limit: 0
";

    #[test]
    fn finds_keys_items_and_flow_parents() {
        assert_eq!(line_of(LAB_TEXT, "name"), Some(1));
        assert_eq!(line_of(LAB_TEXT, "datacenters[0].cidr"), Some(3));
        assert_eq!(line_of(LAB_TEXT, "datacenters[1].name"), Some(5));
        assert_eq!(line_of(LAB_TEXT, "datacenters[1].cidr"), Some(6));
        assert_eq!(line_of(LAB_TEXT, "latency_ms.east.west"), Some(8));
        assert_eq!(line_of(LAB_TEXT, "shards[0].master"), Some(10));
        assert_eq!(line_of(LAB_TEXT, "shards[0].replicas[1]"), Some(13));
        assert_eq!(
            line_of(LAB_TEXT, "gateway_config.breaker.failure_limit"),
            Some(16)
        );
        assert_eq!(line_of(LAB_TEXT, "ports.node"), None);
        assert_eq!(line_of(LAB_TEXT, "shards[3]"), Some(9));
    }

    #[test]
    fn keys_on_the_item_line_have_their_own_block() {
        let yaml = "\
shards:
  - replicas:
      - west
      - eu
    master: east
    spare:
      - x
  -   master: west
";
        assert_eq!(line_of(yaml, "shards[0].replicas"), Some(2));
        assert_eq!(line_of(yaml, "shards[0].replicas[0]"), Some(3));
        assert_eq!(line_of(yaml, "shards[0].replicas[1]"), Some(4));
        // Past the end of `replicas`: its own line, not an item of the sibling `spare`.
        assert_eq!(line_of(yaml, "shards[0].replicas[2]"), Some(2));
        assert_eq!(line_of(yaml, "shards[0].master"), Some(5));
        assert_eq!(line_of(yaml, "shards[1].master"), Some(8));
        assert_eq!(line_of("- - a\n  - b\n", "[0][1]"), Some(2));
    }
}
