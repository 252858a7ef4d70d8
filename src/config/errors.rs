//! Error types of the config layer: one problem (`ConfigError`), all problems of a file
//! (`ConfigErrors`), and the value-level errors of units and addresses.

use std::fmt;

/// One problem found in a config: the key path it concerns, the line of that key in the YAML
/// text when it could be found, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", display_one(self))]
pub struct ConfigError {
    /// Dotted key path with sequence indices, e.g. `cluster.refresh_interval` or
    /// `datacenters.east.cidrs[1]`; empty when the problem concerns the whole file.
    pub path: String,
    /// 1-based line in the YAML text, when known.
    pub line: Option<usize>,
    /// What is wrong, in words an operator can act on.
    pub message: String,
}

impl ConfigError {
    /// A problem at `path` whose line is not known yet.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            line: None,
            message: message.into(),
        }
    }
}

fn display_one(err: &ConfigError) -> String {
    if err.path.is_empty() {
        err.message.clone()
    } else {
        format!("{}: {}", err.path, err.message)
    }
}

/// Every problem found in one config source (a file name, or a label such as `--local-dc`).
///
/// `Display` prints one line per problem, `<source>:<line>: <path>: <message>`, leaving out the
/// line when it is unknown and the path when it is empty, so `meridian check` can print it as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// Where the config came from, e.g. `conf/meridian.yaml`.
    pub source: String,
    /// The problems, in the order they were found; never empty when returned as an error.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, err) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{}:", self.source)?;
            if let Some(line) = err.line {
                write!(f, "{line}:")?;
            }
            write!(f, " {err}")?;
        }
        Ok(())
    }
}

// Implemented by hand: thiserror would take the field named `source` for the error's cause.
impl std::error::Error for ConfigErrors {}

/// Why a duration or size value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Nothing but whitespace.
    #[error("empty value")]
    Empty,
    /// A duration written as a bare number other than 0.
    #[error("`{0}` has no unit; use a unit, e.g. 500ms (only 0 may be written without one)")]
    MissingUnit(String),
    /// A suffix that is not one of the known units.
    #[error("unknown unit `{unit}` in `{value}`; expected one of {expected}")]
    UnknownUnit {
        /// The whole value as written.
        value: String,
        /// The suffix that was not recognised.
        unit: String,
        /// The units that would have been accepted.
        expected: &'static str,
    },
    /// The number part could not be read.
    #[error("`{0}` is not a number followed by a unit")]
    InvalidNumber(String),
    /// A negative amount.
    #[error("`{0}` is negative")]
    Negative(String),
    /// A fraction where only whole numbers make sense (sizes).
    #[error("`{0}` is not a whole number; sizes are whole numbers of b, kb, mb or gb")]
    Fraction(String),
    /// The value does not fit.
    #[error("`{0}` is too large")]
    TooLarge(String),
}

/// Why a `host:port` string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostPortError {
    /// No `:port` part.
    #[error("`{0}` has no port; write it as host:port")]
    MissingPort(String),
    /// Empty host part.
    #[error("`{0}` has no host; write it as host:port")]
    MissingHost(String),
    /// The port is not a number in 1..=65535.
    #[error("`{0}` has an invalid port; ports are 1..65535")]
    InvalidPort(String),
    /// The host is neither an IP address nor a plausible host name.
    #[error("`{0}` has an invalid host; use an IP address or a host name")]
    InvalidHost(String),
    /// An IPv6 address written without brackets, where the port cannot be told apart.
    #[error("`{0}` looks like an IPv6 address; write it as [addr]:port")]
    BareIpv6(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_has_source_line_path_message() {
        let errs = ConfigErrors {
            source: "conf/x.yaml".into(),
            errors: vec![
                ConfigError {
                    path: "cluster.refresh_interval".into(),
                    line: Some(5),
                    message: "must be greater than 0".into(),
                },
                ConfigError::new("local_dc", "`mars` is not a defined datacenter"),
                ConfigError {
                    path: String::new(),
                    line: Some(2),
                    message: "bad yaml".into(),
                },
            ],
        };
        assert_eq!(
            errs.to_string(),
            "conf/x.yaml:5: cluster.refresh_interval: must be greater than 0\n\
             conf/x.yaml: local_dc: `mars` is not a defined datacenter\n\
             conf/x.yaml:2: bad yaml"
        );
    }

    #[test]
    fn config_errors_is_std_error() {
        let errs: Box<dyn std::error::Error> = Box::new(ConfigErrors {
            source: "s".into(),
            errors: vec![ConfigError::new("a", "b")],
        });
        assert_eq!(errs.to_string(), "s: a: b");
        assert!(errs.source().is_none());
    }
}
