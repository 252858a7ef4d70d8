//! The `users` section: gateway users, their password digests, role and key/channel patterns.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::Config;
use super::checks::Errors;

/// What a user may run: `read` (no write, no admin command), `write` (read + write), `admin`
/// (everything meridian forwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Read,
    Write,
    Admin,
}

/// A SHA-256 digest of a password. Its `Debug` never shows the bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PasswordDigest(pub [u8; 32]);

impl PasswordDigest {
    /// The digest of `password`.
    pub fn of(password: &[u8]) -> PasswordDigest {
        PasswordDigest(Sha256::digest(password).into())
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(hex: &str) -> Option<PasswordDigest> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(PasswordDigest(out))
    }
}

impl fmt::Debug for PasswordDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordDigest(<redacted>)")
    }
}

/// One entry of `users`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The name clients give to AUTH; `default` is the user of `AUTH <password>` and of clients
    /// that never authenticate.
    pub name: String,
    /// SHA-256 digests (64 hex digits) of the accepted passwords.
    #[serde(default)]
    pub passwords: Vec<String>,
    /// An environment variable holding one more password, read and hashed at load.
    #[serde(default)]
    pub password_env: Option<String>,
    /// A file holding one more password (a trailing newline is dropped), read and hashed at
    /// load.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A disabled user cannot authenticate.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// What the user may run.
    #[serde(default)]
    pub role: Role,
    /// Key patterns the user may read and write (Redis `~pattern`).
    #[serde(default)]
    pub keys: Vec<String>,
    /// Key patterns the user may only read (Redis 7 `%R~pattern`).
    #[serde(default)]
    pub read_keys: Vec<String>,
    /// Key patterns the user may only write (Redis 7 `%W~pattern`).
    #[serde(default)]
    pub write_keys: Vec<String>,
    /// Pub/sub channel patterns (Redis `&pattern`).
    #[serde(default)]
    pub channels: Vec<String>,
    /// predixy's way: `AUTH <password>` and `HELLO 3 AUTH default <password>` select this user
    /// when the password is one of its (predixy picks its entry by password alone). Off for
    /// Redis-style users, whose clients name them.
    #[serde(default)]
    pub select_by_password: bool,
    /// Every accepted digest: `passwords` and the secrets read at load, filled by
    /// [`Config::parse`]; the plaintext is never kept.
    #[serde(skip)]
    pub digests: Vec<PasswordDigest>,
}

fn enabled_by_default() -> bool {
    true
}

impl UserConfig {
    /// True when a password is required (any password source is configured).
    pub fn has_password(&self) -> bool {
        !self.passwords.is_empty() || self.password_env.is_some() || self.password_file.is_some()
    }
}

impl fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserConfig")
            .field("name", &self.name)
            .field("passwords", &self.passwords.len())
            .field("password_env", &self.password_env)
            .field("password_file", &self.password_file)
            .field("enabled", &self.enabled)
            .field("role", &self.role)
            .field("keys", &self.keys)
            .field("read_keys", &self.read_keys)
            .field("write_keys", &self.write_keys)
            .field("channels", &self.channels)
            .field("select_by_password", &self.select_by_password)
            .finish()
    }
}

/// Reads the secrets of `password_env` / `password_file` and hashes every password source into
/// `digests`; problems (never the secrets) go to `out`.
pub(super) fn resolve_secrets(cfg: &mut Config, out: &mut Errors) {
    for (i, user) in cfg.users.iter_mut().enumerate() {
        let mut digests = Vec::new();
        for (j, hex) in user.passwords.iter().enumerate() {
            match PasswordDigest::from_hex(hex) {
                Some(d) => digests.push(d),
                None => out.push(
                    format!("users[{i}].passwords[{j}]"),
                    "must be a SHA-256 digest: 64 hex digits (echo -n 'secret' | sha256sum)",
                ),
            }
        }
        if let Some(var) = &user.password_env {
            match std::env::var_os(var) {
                Some(value) if !value.is_empty() => {
                    digests.push(PasswordDigest::of(value.as_encoded_bytes()))
                }
                _ => out.push(
                    format!("users[{i}].password_env"),
                    format!("environment variable `{var}` is not set or empty"),
                ),
            }
        }
        if let Some(path) = &user.password_file {
            match std::fs::read(path) {
                Ok(bytes) => {
                    let secret = strip_newline(&bytes);
                    if secret.is_empty() {
                        out.push(format!("users[{i}].password_file"), "the file is empty");
                    } else {
                        digests.push(PasswordDigest::of(secret));
                    }
                }
                Err(e) => out.push(
                    format!("users[{i}].password_file"),
                    format!("cannot read {}: {}", path.display(), e.kind()),
                ),
            }
        }
        user.digests = digests;
    }
}

fn strip_newline(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

/// The semantic rules of `users`.
pub(super) fn check_users(cfg: &Config, out: &mut Errors) {
    for (i, user) in cfg.users.iter().enumerate() {
        let path = format!("users[{i}].name");
        if user.name.is_empty() || user.name.bytes().any(|b| b.is_ascii_whitespace()) {
            out.push(&path, "must be a non-empty name without spaces");
        }
        if cfg.users[..i].iter().any(|u| u.name == user.name) {
            out.push(&path, format!("`{}` is listed twice", user.name));
        }
        if user.select_by_password && !user.has_password() {
            out.push(
                format!("users[{i}].select_by_password"),
                "needs a password to select the user by",
            );
        }
        // A password selects one user: two that share it would make the choice arbitrary.
        let shared = cfg.users[..i].iter().find(|u| {
            (u.select_by_password || user.select_by_password)
                && u.digests.iter().any(|d| user.digests.contains(d))
        });
        if let Some(other) = shared {
            out.push(
                format!("users[{i}].passwords"),
                format!(
                    "shares a password with `{}`: select_by_password needs each password to name one user",
                    other.name
                ),
            );
        }
        if user.name != "default" && !user.has_password() {
            out.push(
                format!("users[{i}]"),
                "needs passwords, password_env or password_file (only `default` may have none)",
            );
        }
    }
}

/// Advice that is not an error: printed by `meridian check` and logged at start.
pub fn warnings(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let loopback = cfg
        .listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback());
    if cfg.users.is_empty() && !loopback && cfg.cluster.password.is_some() {
        out.push(format!(
            "listen {} is reachable beyond loopback and cluster.password is set, but no `users` are configured: any client that reaches meridian gets the backend's access",
            cfg.listen
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate::tests::{BASE, errors, one};

    const DIGEST: &str = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

    #[test]
    fn digest_of_secret_is_sha256() {
        assert_eq!(
            PasswordDigest::from_hex(DIGEST),
            Some(PasswordDigest::of(b"secret"))
        );
        assert_eq!(
            PasswordDigest::from_hex(&DIGEST.to_uppercase()),
            Some(PasswordDigest::of(b"secret"))
        );
        assert_eq!(PasswordDigest::from_hex("abc"), None);
        assert_eq!(
            format!("{:?}", PasswordDigest::of(b"secret")),
            "PasswordDigest(<redacted>)"
        );
    }

    #[test]
    fn users_parse_with_defaults() {
        let yaml = format!(
            "{BASE}users:\n  - name: app\n    passwords: [{DIGEST}]\n    keys: ['app:*']\n"
        );
        let cfg = Config::parse(&yaml, "t").unwrap();
        let u = &cfg.users[0];
        assert!(u.enabled);
        assert_eq!(u.role, Role::Read);
        assert_eq!(u.digests, vec![PasswordDigest::of(b"secret")]);
        assert!(!format!("{u:?}").contains(DIGEST));
    }

    #[test]
    fn bad_digest_and_unknown_key_are_named() {
        let yaml = format!("{BASE}users:\n  - name: app\n    passwords: [nothex]\n");
        one(&yaml, "users[0].passwords[0]", Some(8), "64 hex digits");
        let yaml = format!("{BASE}users:\n  - name: app\n    password: x\n");
        assert!(errors(&yaml)[0].2.contains("unknown field"));
        let yaml =
            format!("{BASE}users:\n  - name: app\n    role: root\n    passwords: [{DIGEST}]\n");
        assert!(!errors(&yaml).is_empty());
    }

    #[test]
    fn non_default_user_needs_a_password_and_names_are_unique() {
        let yaml = format!("{BASE}users:\n  - name: app\n");
        one(&yaml, "users[0]", Some(7), "needs passwords");
        let yaml = format!("{BASE}users:\n  - name: default\n  - name: default\n");
        one(&yaml, "users[1].name", Some(8), "listed twice");
    }

    #[test]
    fn a_password_selects_one_user() {
        let two = |second: &str| {
            format!(
                "{BASE}users:\n  - name: a\n    passwords: [{DIGEST}]\n    select_by_password: true\n  - name: b\n    passwords: [{DIGEST}]\n{second}"
            )
        };
        one(
            &two(""),
            "users[1].passwords",
            Some(11),
            "shares a password with `a`",
        );
        let other = DIGEST.replace('2', "3");
        let yaml = two("").replacen(DIGEST, &other, 1);
        assert!(errors(&yaml).is_empty());
        let yaml = format!("{BASE}users:\n  - name: default\n    select_by_password: true\n");
        one(
            &yaml,
            "users[0].select_by_password",
            Some(8),
            "needs a password",
        );
    }

    #[test]
    fn env_and_file_secrets_are_hashed_never_kept() {
        let dir = std::env::temp_dir().join(format!("meridian-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let yaml = format!(
            "{BASE}users:\n  - name: app\n    password_file: {}\n    password_env: MERIDIAN_TEST_UNSET_VAR_X\n",
            file.display()
        );
        let errs = errors(&yaml);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, "users[0].password_env");
        let yaml = format!(
            "{BASE}users:\n  - name: app\n    password_file: {}\n",
            file.display()
        );
        let cfg = Config::parse(&yaml, "t").unwrap();
        assert_eq!(cfg.users[0].digests, vec![PasswordDigest::of(b"from-file")]);
        assert!(!format!("{cfg:?}").contains("from-file\""));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn check_warns_about_an_open_gateway_with_backend_credentials() {
        let open = BASE.replace("127.0.0.1:7617", "0.0.0.0:7617");
        let with_pw = format!("{open}  password: x\n");
        let cfg = Config::parse(&with_pw, "t").unwrap();
        assert_eq!(warnings(&cfg).len(), 1);
        assert!(!warnings(&cfg)[0].contains(": x"));
        let local = format!("{BASE}  password: x\n");
        assert!(warnings(&Config::parse(&local, "t").unwrap()).is_empty());
        let with_users = format!("{with_pw}users:\n  - name: default\n");
        assert!(warnings(&Config::parse(&with_users, "t").unwrap()).is_empty());
    }
}
