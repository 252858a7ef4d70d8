//! predixy's `Authority { Auth [password] { Mode …; KeyPrefix …; ReadKeyPrefix …;
//! WriteKeyPrefix … } }` as meridian `users`: passwords only as SHA-256 digests (the plaintext
//! appears nowhere in the output, not even in a comment), modes as roles, prefixes as `prefix*`
//! globs, and `select_by_password` so predixy's clients keep sending `AUTH <password>`.

use crate::config::PasswordDigest;

use super::PredixyError;
use super::parse::Directive;

/// One line of a section the writer prints, at an indent: YAML as written, `key: [items]`
/// or `- key: value` with each text to be double-quoted by the writer, or a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Line {
    Yaml(usize, String),
    List(usize, &'static str, Vec<String>),
    Item(usize, &'static str, String),
    Comment(usize, String),
}

/// One predixy `Auth` entry, already reduced to what meridian needs.
#[derive(Debug, Clone)]
struct Entry {
    at: String,
    /// SHA-256 of the password; `None` for the entry without one (the default user).
    digest: Option<PasswordDigest>,
    role: &'static str,
    /// Prefixes read commands may use (`None`: any key), and write commands.
    read: Option<Vec<String>>,
    write: Option<Vec<String>>,
}

/// The users an Authority block becomes.
#[derive(Debug, Default)]
pub(super) struct Authority {
    at: String,
    entries: Vec<Entry>,
    notes: Vec<String>,
}

/// Reads an `Authority` block.
pub(super) fn authority(d: &Directive) -> Result<Authority, PredixyError> {
    let mut out = Authority {
        at: d.at.clone(),
        ..Authority::default()
    };
    for auth in d.block.iter().flatten() {
        if !auth.is("Auth") {
            out.notes.push(format!(
                "{} ({}) is not an Auth entry and was left out",
                auth.key, auth.at
            ));
            continue;
        }
        let entry = entry(auth, &mut out.notes)?;
        // predixy keeps the last entry of a password, as it keys its entries by password.
        let same = |e: &Entry| match (e.digest, entry.digest) {
            (Some(a), Some(b)) => a == b,
            (None, None) => true,
            _ => false,
        };
        if let Some(i) = out.entries.iter().position(same) {
            let old = out.entries.remove(i);
            out.notes.push(format!(
                "Auth at {} has the same password as the one at {}, which it replaces, as in predixy",
                entry.at, old.at
            ));
        }
        out.entries.push(entry);
    }
    Ok(out)
}

fn entry(auth: &Directive, notes: &mut Vec<String>) -> Result<Entry, PredixyError> {
    let digest = (!auth.value.is_empty()).then(|| PasswordDigest::of(auth.value.as_bytes()));
    let mut role = None;
    let (mut any, mut read, mut write) = (None, None, None);
    for item in auth.block.iter().flatten() {
        let list = || item.value.split_whitespace().map(str::to_string).collect();
        if item.is("Mode") {
            role = Some(match item.value.to_ascii_lowercase().as_str() {
                "read" => "read",
                "write" => "write",
                "admin" => "admin",
                _ => {
                    return Err(PredixyError::Value {
                        at: item.at.clone(),
                        key: item.key.clone(),
                        value: item.value.clone(),
                        expected: "read, write or admin".into(),
                    });
                }
            });
        } else if item.is("KeyPrefix") {
            any = Some(list());
        } else if item.is("ReadKeyPrefix") {
            read = Some(list());
        } else if item.is("WriteKeyPrefix") {
            write = Some(list());
        } else {
            notes.push(format!(
                "{} {} ({}) is not an Auth setting meridian knows and was left out",
                item.key, item.value, item.at
            ));
        }
    }
    let role = role.unwrap_or_else(|| {
        notes.push(format!(
            "Auth at {} has no Mode: it became a `read` user (the narrowest role)",
            auth.at
        ));
        "read"
    });
    // As predixy: KeyPrefix stands for whichever of the two is not given.
    Ok(Entry {
        at: auth.at.clone(),
        digest,
        role,
        read: read.or_else(|| any.clone()),
        write: write.or(any),
    })
}

/// `prefix*` with the glob's special characters in the prefix escaped.
fn glob_of(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('*');
    out
}

/// The globs of some prefixes (`*` for any key).
fn globs(prefixes: Option<&Vec<String>>) -> Vec<String> {
    match prefixes {
        None => vec!["*".to_string()],
        Some(p) => p.iter().map(|p| glob_of(p)).collect(),
    }
}

fn hex(d: &PasswordDigest) -> String {
    d.0.iter().map(|b| format!("{b:02x}")).collect()
}

impl Authority {
    /// The `users:` section, with comments on what changed in meaning.
    pub(super) fn lines(&self) -> Vec<Line> {
        let mut out = vec![Line::Comment(
            0,
            format!(
                "predixy Authority ({}): each Auth is a user picked by its password alone \
                     (select_by_password), so clients keep sending `AUTH <password>` (or \
                     `HELLO 3 AUTH default <password>`). Passwords are kept as SHA-256 digests \
                     only. Channels are not restricted, as in predixy.",
                self.at
            ),
        )];
        if self.entries.iter().any(|e| e.read != e.write) {
            out.push(Line::Comment(
                0,
                "NOTE: a command that reads and writes a key (INCR, LPUSH …) needs both the \
                 read and the write pattern in meridian (Redis' rule); predixy checked only \
                 the write prefixes."
                    .to_string(),
            ));
        }
        for note in &self.notes {
            out.push(Line::Comment(0, format!("NOTE: {note}")));
        }
        out.push(Line::Yaml(0, "users:".to_string()));
        if !self.entries.iter().any(|e| e.digest.is_none()) {
            out.push(Line::Comment(
                2,
                "no Auth without a password: clients must AUTH before anything else (NOAUTH)"
                    .to_string(),
            ));
            out.push(Line::Yaml(2, "- name: default".to_string()));
            out.push(Line::Yaml(4, "enabled: false".to_string()));
        }
        let mut n = 0;
        for e in &self.entries {
            let name = match e.digest {
                None => "default".to_string(),
                Some(_) => {
                    n += 1;
                    format!("{}{n}", e.role)
                }
            };
            out.push(Line::Comment(2, format!("Auth at {}", e.at)));
            out.push(Line::Yaml(2, format!("- name: {name}")));
            if let Some(d) = &e.digest {
                out.push(Line::Yaml(4, format!("passwords: [{}]", hex(d))));
                out.push(Line::Yaml(4, "select_by_password: true".to_string()));
            }
            out.push(Line::Yaml(4, format!("role: {}", e.role)));
            if e.read == e.write {
                out.push(Line::List(4, "keys", globs(e.read.as_ref())));
            } else {
                out.push(Line::List(4, "read_keys", globs(e.read.as_ref())));
                out.push(Line::List(4, "write_keys", globs(e.write.as_ref())));
            }
            out.push(Line::List(4, "channels", vec!["*".to_string()]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Users;
    use crate::config::Config;

    const AUTHORITY: &str = "\
ClusterServerPool {
    Servers {
        + 127.0.0.1:7001
    }
}
Authority {
    Auth {
        Mode read
        KeyPrefix pub:
    }
    Auth \"#hash in it#\" {
        Mode admin
    }
    Auth cart {
        Mode write
        ReadKeyPrefix cart: stock:
        WriteKeyPrefix cart:
    }
    Auth s3cret {
        Mode write
        KeyPrefix app: a*b
    }
}
";

    /// The `users` section of the conversion, byte for byte.
    const GOLDEN: &str = r#"users:
  # Auth at predixy.conf:7
  - name: default
    role: read
    keys: ["pub:*"]
    channels: ["*"]
  # Auth at predixy.conf:11
  - name: admin1
    passwords: [772cec8099183f302ae91b05076960865d132f41641d70724a8763309204abd4]
    select_by_password: true
    role: admin
    keys: ["*"]
    channels: ["*"]
  # Auth at predixy.conf:14
  - name: write2
    passwords: [1c42ddc0285b9c25135be3bf345e6a041271b784b22a6f6cab6588dab93c5980]
    select_by_password: true
    role: write
    read_keys: ["cart:*", "stock:*"]
    write_keys: ["cart:*"]
    channels: ["*"]
  # Auth at predixy.conf:19
  - name: write3
    passwords: [1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0]
    select_by_password: true
    role: write
    keys: ["app:*", "a\\*b*"]
    channels: ["*"]
"#;

    fn convert(conf: &str) -> (String, Config) {
        let yaml = super::super::convert(conf, &|_| None).expect("converts");
        let cfg = Config::parse(&yaml, "converted").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        (yaml, cfg)
    }

    #[test]
    fn authority_becomes_users_golden_and_never_plaintext() {
        let (yaml, cfg) = convert(AUTHORITY);
        let users = &yaml[yaml.find("\nusers:\n").expect("a users section") + 1..];
        let users = &users[..users.find("\n\n").map_or(users.len(), |end| end + 1)];
        assert_eq!(users, GOLDEN);
        for secret in ["#hash in it#", "cart\"", "s3cret"] {
            assert!(!yaml.contains(secret), "{secret} shows in:\n{yaml}");
        }
        assert!(yaml.contains("predixy checked only the write prefixes"));
        // Clients keep sending predixy's `AUTH <password>` and get their entry's rights.
        let users = Users::from_config(&cfg.users).expect("users");
        let who = |pw: &str| {
            users
                .authenticate(None, pw.as_bytes())
                .map(|u| u.name.to_string())
        };
        assert_eq!(who("cart").as_deref(), Ok("write2"));
        assert_eq!(who("#hash in it#").as_deref(), Ok("admin1"));
        let w = users
            .authenticate(Some(b"default"), b"s3cret")
            .expect("by password");
        assert!(w.writable.allows(b"a*b1") && !w.writable.allows(b"axb1"));
        assert_eq!(
            users.initial().map(|u| u.name.to_string()).as_deref(),
            Some("default")
        );
    }

    #[test]
    fn without_a_passwordless_auth_default_is_disabled() {
        let conf = AUTHORITY.replace(
            "    Auth {\n        Mode read\n        KeyPrefix pub:\n    }\n",
            "",
        );
        let conf = conf.replace("Auth s3cret {", "Auth cart {");
        let (yaml, cfg) = convert(&conf);
        let default = cfg
            .users
            .iter()
            .find(|u| u.name == "default")
            .expect("default");
        assert!(!default.enabled);
        // The later of two entries with one password wins, as in predixy.
        let flat: Vec<&str> = yaml.split_whitespace().filter(|w| *w != "#").collect();
        assert!(flat.join(" ").contains("which it replaces"), "{yaml}");
        let cart: Vec<_> = cfg.users.iter().filter(|u| u.select_by_password).collect();
        assert_eq!(cart.len(), 2);
        assert_eq!(cart[1].keys, ["app:*", "a\\*b*"]);
        assert!(!yaml.contains("predixy checked only the write prefixes"));
        let users = Users::from_config(&cfg.users).expect("users");
        assert!(users.initial().is_none());
    }

    #[test]
    fn prefixes_become_escaped_globs() {
        assert_eq!(glob_of("cart:"), "cart:*");
        assert_eq!(glob_of("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\*");
        assert_eq!(globs(None), ["*"]);
        assert_eq!(globs(Some(&vec!["x:".into(), "y".into()])), ["x:*", "y*"]);
        // The escaped glob matches the prefix literally, as predixy's prefix test does.
        let g = glob_of("a*[");
        assert!(crate::acl::glob::matches(g.as_bytes(), b"a*[1"));
        assert!(!crate::acl::glob::matches(g.as_bytes(), b"ab[1"));
    }
}
