//! Reading a config: file → YAML → `Config` → validation, with every error tied to its key path
//! and line.

use std::path::Path;

use super::Config;
use super::checks::Errors;
use super::errors::{ConfigError, ConfigErrors};
use super::locate::line_of;

/// Source label of the errors [`Config::with_local_dc`] reports.
const LOCAL_DC_SOURCE: &str = "--local-dc";

impl Config {
    /// Parses and validates YAML `text`; `source` names it in errors (usually the file path).
    ///
    /// Every problem is reported, each with the line of its key when the text shows it: a value
    /// that does not parse is taken out and the rest parsed again, so it hides no other error.
    pub fn parse(text: &str, source: &str) -> Result<Config, ConfigErrors> {
        let fail = |errors| ConfigErrors {
            source: source.to_string(),
            errors,
        };
        let mut config = if is_blank(text) {
            // An empty document is an empty mapping; validation then says what is missing.
            Config::default()
        } else {
            match serde_yaml_ng::from_str::<Config>(text) {
                Ok(config) => config,
                Err(err) => return Err(fail(all_errors(text, yaml_error(&err)))),
            }
        };
        let mut found = Errors::new();
        super::users::resolve_secrets(&mut config, &mut found);
        let mut errors = found.into_vec();
        errors.extend(config.validate());
        if errors.is_empty() {
            return Ok(config);
        }
        for err in &mut errors {
            err.line = line_of(text, &err.path);
        }
        Err(fail(errors))
    }

    /// Reads and parses the file at `path`; errors name the path as given.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let source = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text, &source),
            Err(err) => Err(ConfigErrors {
                source,
                errors: vec![ConfigError::new("", format!("cannot read the file: {err}"))],
            }),
        }
    }

    /// Applies a `--local-dc` / `MERIDIAN_LOCAL_DC` override (`None` keeps the file's value) and
    /// validates again, since the local DC decides which latency row must exist.
    ///
    /// Errors carry the source `--local-dc` and no line: the text is not at hand any more.
    pub fn with_local_dc(mut self, dc: Option<String>) -> Result<Config, ConfigErrors> {
        if let Some(dc) = dc {
            self.local_dc = Some(dc);
        }
        let errors = self.validate();
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(ConfigErrors {
                source: LOCAL_DC_SOURCE.to_string(),
                errors,
            })
        }
    }
}

/// What the command line overrides in the file's config. Kept for the life of the process so a
/// reload applies them again: the command line wins over the file, at start and at each reload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--workers`.
    pub workers: Option<usize>,
    /// `--local-dc` / `MERIDIAN_LOCAL_DC`.
    pub local_dc: Option<String>,
}

impl Config {
    /// This config with the command line's overrides applied, validated again.
    pub fn with_overrides(self, o: &Overrides) -> Result<Config, ConfigErrors> {
        let mut c = self.with_local_dc(o.local_dc.clone())?;
        if let Some(l) = &o.listen {
            c.listen = l.clone();
        }
        if let Some(w) = o.workers {
            c.workers = w;
        }
        Ok(c)
    }
}

/// Every error of a text whose first error stopped parsing: the offending key is taken out and
/// the rest parsed again (a bounded number of times), so one bad value does not hide others.
fn all_errors(text: &str, first: ConfigError) -> Vec<ConfigError> {
    let mut errors = vec![first];
    let Ok(mut value) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) else {
        return errors;
    };
    let mut removed: Vec<String> = Vec::new();
    for _ in 0..32 {
        let Some(path) = errors.last().map(|e| e.path.clone()) else {
            break;
        };
        if path.is_empty() || removed.contains(&path) || !remove_path(&mut value, &path) {
            break;
        }
        removed.push(path);
        match serde_yaml_ng::from_value::<Config>(value.clone()) {
            Ok(config) => {
                let rest = config.validate().into_iter().filter(|e| {
                    !removed
                        .iter()
                        .any(|r| e.path == *r || e.path.starts_with(&format!("{r}.")))
                });
                for mut e in rest {
                    e.line = line_of(text, &e.path);
                    errors.push(e);
                }
                break;
            }
            Err(err) => {
                let mut e = yaml_error(&err);
                e.line = line_of(text, &e.path).or(e.line);
                errors.push(e);
            }
        }
    }
    errors
}

/// Removes the key at dotted `path` from a YAML mapping tree; false when it is not there.
fn remove_path(value: &mut serde_yaml_ng::Value, path: &str) -> bool {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else {
        return false;
    };
    let mut node = value;
    for part in parts {
        let Some(next) = node.get_mut(part) else {
            return false;
        };
        node = next;
    }
    match node.as_mapping_mut() {
        Some(map) => map.remove(last).is_some(),
        None => false,
    }
}

/// True when the text holds no YAML content, only blank lines and comments.
fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---"
    })
}

/// Turns a serde_yaml_ng error into one `ConfigError`: its location gives the line; its text is
/// `path: message at line L column C`, which is split into path and message.
fn yaml_error(err: &serde_yaml_ng::Error) -> ConfigError {
    let text = err.to_string();
    let message = strip_position(&text);
    let (path, message) = match message.split_once(": ") {
        // A path has no spaces; anything else is the start of a message.
        Some((path, rest)) if !path.is_empty() && !path.contains(char::is_whitespace) => {
            (path.to_string(), rest.to_string())
        }
        _ => (String::new(), message.to_string()),
    };
    // Name the unknown key itself, not only its parent.
    let (path, message) = match message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
    {
        Some((name, rest)) => {
            let full = if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}.{name}")
            };
            (full, format!("unknown field{rest}"))
        }
        None => (path, message),
    };
    ConfigError {
        path,
        line: err.location().map(|loc| loc.line()),
        message,
    }
}

/// Drops a trailing ` at line L column C` (or ` at position P`), which the line field carries.
fn strip_position(text: &str) -> &str {
    for marker in [" at line ", " at position "] {
        if let Some(at) = text.rfind(marker) {
            let tail = &text[at + marker.len()..];
            let is_position = tail
                .split(" column ")
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
            if is_position {
                return &text[..at];
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn err_of(yaml: &str) -> ConfigError {
        let errs = Config::parse(yaml, "t.yaml").unwrap_err();
        assert_eq!(errs.errors.len(), 1, "{errs}");
        errs.errors.into_iter().next().unwrap()
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let cfg = Config::parse("cluster:\n  seeds: [127.0.0.1:7001]\n", "t").unwrap();
        let mut expected = Config::default();
        expected.cluster.seeds = vec!["127.0.0.1:7001".into()];
        assert_eq!(cfg, expected);
    }

    #[test]
    fn type_error_has_path_and_line() {
        let err = err_of("cluster:\n  seeds: [a:1]\n  refresh_interval: 5\n");
        assert_eq!(err.path, "cluster.refresh_interval");
        assert_eq!(err.line, Some(3));
        assert!(
            err.message.contains("use a unit, e.g. 500ms"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("column"), "{}", err.message);
    }

    #[test]
    fn unknown_field_is_rejected_with_line() {
        let err = err_of("cluster:\n  seeds: [a:1]\n  refresh_intervall: 1s\n");
        assert_eq!(err.path, "cluster.refresh_intervall");
        assert_eq!(err.line, Some(3));
        assert!(
            err.message.starts_with("unknown field, expected one of"),
            "{}",
            err.message
        );
        let err = err_of("cluster:\n  seeds: [a:1]\nbogus: 1\n");
        assert_eq!((err.path.as_str(), err.line), ("bogus", Some(3)));
        assert!(
            err.message.starts_with("unknown field, expected one of"),
            "{}",
            err.message
        );
        let err = err_of("cluster: {seeds: [a:1]}\ndatacenters:\n  e:\n    cidr: []\n");
        assert_eq!(
            (err.path.as_str(), err.line),
            ("datacenters.e.cidr", Some(4))
        );
    }

    #[test]
    fn bad_cidr_names_its_index() {
        let err = err_of(
            "cluster: {seeds: [a:1]}\ndatacenters:\n  e:\n    cidrs:\n      - 10.0.0.0/8\n      - 10.1\n",
        );
        assert_eq!(err.path, "datacenters.e.cidrs[1]");
        assert_eq!(err.line, Some(6));
        assert!(err.message.contains("not a CIDR"), "{}", err.message);
    }

    #[test]
    fn bad_enum_and_ip() {
        let err = err_of("cluster: {seeds: [a:1]}\nread_policy:\n  latency_source: nearest\n");
        assert_eq!(
            (err.path.as_str(), err.line),
            ("read_policy.latency_source", Some(3))
        );
        let err = err_of("cluster: {seeds: [a:1]}\nsource_address: 10.0.0\n");
        assert_eq!((err.path.as_str(), err.line), ("source_address", Some(2)));
    }

    #[test]
    fn syntax_error_has_a_line() {
        let err = err_of("cluster:\n  seeds: [a:1\nlisten: x\n");
        assert!(err.line.is_some());
        assert!(!err.message.is_empty());
    }

    #[test]
    fn empty_file_reports_missing_seeds() {
        for text in ["", "# nothing\n\n", "---\n"] {
            let errs = Config::parse(text, "e.yaml").unwrap_err();
            assert_eq!(
                errs.to_string(),
                "e.yaml: cluster.seeds: at least one seed (host:port) is required"
            );
        }
    }

    #[test]
    fn load_reports_missing_file() {
        let errs = Config::load(Path::new("/nonexistent/meridian.yaml")).unwrap_err();
        assert_eq!(errs.source, "/nonexistent/meridian.yaml");
        assert!(
            errs.to_string()
                .starts_with("/nonexistent/meridian.yaml: cannot read the file")
        );
    }

    #[test]
    fn local_dc_override_revalidates() {
        let yaml = "cluster: {seeds: [a:1]}\nlocal_dc: east\ndatacenters:\n  east: {}\n  west: {}\n\
                    latency_ms:\n  east: {east: 1, west: 2}\n";
        let cfg = Config::parse(yaml, "t").unwrap();
        let same = cfg.clone().with_local_dc(None).unwrap();
        assert_eq!(same.local_dc.as_deref(), Some("east"));
        let errs = cfg.clone().with_local_dc(Some("west".into())).unwrap_err();
        assert_eq!(
            errs.to_string(),
            "--local-dc: latency_ms: has no row for the local datacenter `west`"
        );
        let errs = cfg.with_local_dc(Some("mars".into())).unwrap_err();
        assert_eq!(
            errs.to_string(),
            "--local-dc: local_dc: `mars` is not a defined datacenter (defined: east, west)"
        );
    }

    #[test]
    fn strips_positions_only_at_the_end() {
        assert_eq!(strip_position("a: b at line 3 column 7"), "a: b");
        assert_eq!(strip_position("a: b at position 12"), "a: b");
        assert_eq!(strip_position("x at line one"), "x at line one");
    }

    #[test]
    fn durations_in_sections() {
        let cfg = Config::parse(
            "cluster: {seeds: [a:1]}\nclient: {timeout: 0}\nbreaker: {connect_timeout: 250ms}\n",
            "t",
        )
        .unwrap();
        assert_eq!(cfg.client.timeout, Duration::ZERO);
        assert_eq!(cfg.breaker.connect_timeout, Duration::from_millis(250));
    }
}
