//! Finds the line of a key path such as `shards[1].replicas[0]` in a block-style YAML text, so
//! topology errors point at a line. An indentation scan, not a parser: inside a flow
//! collection (`{ a: 1 }`, `[x]`) it answers the line that holds the collection.

/// One non-blank, non-comment line.
struct Line<'a> {
    number: usize,
    indent: usize,
    text: &'a str,
}

/// The 1-based line of `path` in `yaml`, or of the deepest part of it that was found.
pub(crate) fn line_of(yaml: &str, path: &str) -> Option<usize> {
    let lines: Vec<Line<'_>> = yaml
        .lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let text = raw.trim();
            let skip = text.is_empty() || text.starts_with('#') || text == "---";
            let indent = raw.len() - raw.trim_start().len();
            (!skip).then_some(Line {
                number: i + 1,
                indent,
                text,
            })
        })
        .collect();
    let mut parent: Option<usize> = None;
    let mut found = None;
    for step in steps(path) {
        if let Some(p) = parent
            && is_flow(lines[p].text)
        {
            break;
        }
        let next = match step {
            Step::Key(key) => find_key(&lines, parent, key),
            Step::Index(n) => find_item(&lines, parent, n),
        };
        let Some(at) = next else { break };
        found = Some(lines[at].number);
        parent = Some(at);
    }
    found
}

enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        for index in rest.split('[') {
            if let Ok(n) = index.trim_end_matches(']').parse() {
                out.push(Step::Index(n));
            }
        }
    }
    out
}

/// Whether the value on this line is a flow collection (nothing below it to descend into).
fn is_flow(text: &str) -> bool {
    let value = text.trim_start_matches("- ");
    let value = value.split_once(": ").map_or(value, |(_, v)| v).trim();
    value.starts_with('{') || value.starts_with('[')
}

/// Indices of the lines nested under `parent` (the whole text at the root).
fn children(lines: &[Line<'_>], parent: Option<usize>) -> std::ops::Range<usize> {
    let Some(p) = parent else {
        return 0..lines.len();
    };
    let item = lines[p].text.starts_with("- ");
    let (indent, end) = (lines[p].indent, lines.len());
    let end = (p + 1..end)
        .find(|&i| {
            let line = &lines[i];
            if item {
                // An item `- a: 1` has its sibling keys indented to where `a` starts.
                line.indent < indent + 2
            } else {
                // A sequence may sit at its key's own indentation.
                line.indent < indent || (line.indent == indent && !line.text.starts_with('-'))
            }
        })
        .unwrap_or(end);
    p + 1..end
}

fn key_of(text: &str) -> &str {
    let text = text.trim_start_matches("- ");
    text.split_once(':').map_or("", |(k, _)| k.trim())
}

fn find_key(lines: &[Line<'_>], parent: Option<usize>, key: &str) -> Option<usize> {
    if let Some(p) = parent
        && lines[p].text.starts_with("- ")
        && key_of(lines[p].text) == key
    {
        return Some(p);
    }
    let range = children(lines, parent);
    let top = range.clone().map(|i| lines[i].indent).min()?;
    range.into_iter().find(|&i| {
        let line = &lines[i];
        line.indent == top && !line.text.starts_with('-') && key_of(line.text) == key
    })
}

fn find_item(lines: &[Line<'_>], parent: Option<usize>, n: usize) -> Option<usize> {
    let range = children(lines, parent);
    let top = range.clone().map(|i| lines[i].indent).min()?;
    range
        .filter(|&i| lines[i].indent == top && lines[i].text.starts_with('-'))
        .nth(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
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
        assert_eq!(line_of(TEXT, "name"), Some(1));
        assert_eq!(line_of(TEXT, "datacenters[0].cidr"), Some(3));
        assert_eq!(line_of(TEXT, "datacenters[1].name"), Some(5));
        assert_eq!(line_of(TEXT, "datacenters[1].cidr"), Some(6));
        assert_eq!(line_of(TEXT, "latency_ms.east.west"), Some(8));
        assert_eq!(line_of(TEXT, "shards[0].master"), Some(10));
        assert_eq!(line_of(TEXT, "shards[0].replicas[1]"), Some(13));
        assert_eq!(
            line_of(TEXT, "gateway_config.breaker.failure_limit"),
            Some(16)
        );
        assert_eq!(line_of(TEXT, "ports.node"), None);
        assert_eq!(line_of(TEXT, "shards[3]"), Some(9));
    }
}
