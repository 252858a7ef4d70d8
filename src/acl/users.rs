//! The configured users, built once from config, and authentication in constant time.

use std::fmt;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::config::{PasswordDigest, Role, UserConfig};

/// Patterns of one kind; `*` alone short-circuits to "everything", as Redis' `allkeys`.
#[derive(Default)]
pub struct Patterns {
    pub all: bool,
    pub list: Vec<Box<[u8]>>,
}

impl Patterns {
    fn of(src: &[&Vec<String>]) -> Patterns {
        let mut p = Patterns::default();
        for pat in src.iter().flat_map(|v| v.iter()) {
            if pat == "*" {
                p.all = true;
            } else {
                p.list.push(pat.as_bytes().into());
            }
        }
        p
    }

    /// True when `text` matches one of the patterns.
    pub fn allows(&self, text: &[u8]) -> bool {
        self.all || self.list.iter().any(|p| super::glob::matches(p, text))
    }
}

/// One gateway user.
pub struct User {
    pub name: Box<str>,
    pub enabled: bool,
    pub role: Role,
    /// No password configured: any password is accepted (only `default` may be so).
    pub nopass: bool,
    digests: Vec<PasswordDigest>,
    /// Keys it may read: `keys` and `read_keys`.
    pub readable: Patterns,
    /// Keys it may write: `keys` and `write_keys`.
    pub writable: Patterns,
    pub channels: Patterns,
    /// Every key and channel allowed: the checks after the role are skipped.
    pub unrestricted: bool,
    /// `AUTH <password>` / `HELLO … AUTH default <password>` select it by its password.
    pub select_by_password: bool,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl User {
    /// The user an entry of `users` describes.
    pub fn from_config(cfg: &UserConfig) -> User {
        let readable = Patterns::of(&[&cfg.keys, &cfg.read_keys]);
        let writable = Patterns::of(&[&cfg.keys, &cfg.write_keys]);
        let channels = Patterns::of(&[&cfg.channels]);
        User {
            name: cfg.name.as_str().into(),
            enabled: cfg.enabled,
            role: cfg.role,
            nopass: !cfg.has_password(),
            digests: cfg.digests.clone(),
            unrestricted: readable.all && writable.all && channels.all,
            select_by_password: cfg.select_by_password,
            readable,
            writable,
            channels,
        }
    }

    /// True when `password` is one of the user's; every digest is compared in constant time.
    fn password_ok(&self, password: &[u8]) -> bool {
        let given = PasswordDigest::of(password);
        let mut ok = subtle::Choice::from(0u8);
        for d in &self.digests {
            ok |= d.0.ct_eq(&given.0);
        }
        self.nopass || bool::from(ok)
    }
}

/// Why AUTH failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password or disabled user (one answer for all, as Redis).
    #[error("WRONGPASS invalid username-password pair or user is disabled.")]
    WrongPass,
    /// `AUTH <password>` while `default` needs no password.
    #[error(
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    )]
    DefaultHasNoPassword,
}

/// Every configured user.
#[derive(Debug)]
pub struct Users {
    list: Vec<Arc<User>>,
}

impl Users {
    /// The users of `cfg`; `None` when there are none (meridian stays open).
    pub fn from_config(cfg: &[UserConfig]) -> Option<Users> {
        if cfg.is_empty() {
            return None;
        }
        let list = cfg.iter().map(|u| Arc::new(User::from_config(u))).collect();
        Some(Users { list })
    }

    /// The enabled `select_by_password` user `password` belongs to. Every such user's digests
    /// are compared, in constant time, whichever matches: the time taken says nothing about
    /// which user (if any) the password is.
    fn by_password(&self, password: &[u8]) -> Option<Arc<User>> {
        let mut found = None;
        for u in self.list.iter().filter(|u| u.select_by_password) {
            let ok = !u.nopass && u.password_ok(password) && u.enabled;
            if ok && found.is_none() {
                found = Some(u.clone());
            }
        }
        found
    }

    fn find(&self, name: &[u8]) -> Option<&Arc<User>> {
        self.list.iter().find(|u| u.name.as_bytes() == name)
    }

    /// The user a new (or RESET) client is: `default` when it is enabled and has no password,
    /// else nobody (every command but AUTH/HELLO/QUIT/RESET answers NOAUTH).
    pub fn initial(&self) -> Option<Arc<User>> {
        self.find(b"default")
            .filter(|u| u.enabled && u.nopass)
            .cloned()
    }

    /// AUTH: the user `name` (or `default`) if `password` is one of its. Without a name or
    /// with `default` (what predixy's clients send, and redis-py's `HELLO 3 AUTH default`),
    /// an enabled `select_by_password` user whose password it is comes first.
    pub fn authenticate(
        &self,
        name: Option<&[u8]>,
        password: &[u8],
    ) -> Result<Arc<User>, AuthError> {
        if name.is_none_or(|n| n == b"default")
            && let Some(user) = self.by_password(password)
        {
            return Ok(user);
        }
        let user = self.find(name.unwrap_or(b"default"));
        if name.is_none() && user.is_some_and(|u| u.nopass && u.enabled) {
            return Err(AuthError::DefaultHasNoPassword);
        }
        match user {
            Some(u) if u.password_ok(password) && u.enabled => Ok(u.clone()),
            _ => Err(AuthError::WrongPass),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, pw: Option<&str>) -> UserConfig {
        let mut u: UserConfig = serde_yaml_ng::from_str(&format!("name: {name}")).unwrap();
        if let Some(pw) = pw {
            u.passwords = vec!["x".into()];
            u.digests = vec![PasswordDigest::of(pw.as_bytes())];
        }
        u
    }

    #[test]
    fn authenticates_by_name_and_password() {
        let users =
            Users::from_config(&[user("default", Some("d")), user("app", Some("a"))]).unwrap();
        assert!(users.initial().is_none());
        assert_eq!(&*users.authenticate(None, b"d").unwrap().name, "default");
        assert_eq!(
            &*users.authenticate(Some(b"app"), b"a").unwrap().name,
            "app"
        );
        assert_eq!(
            users.authenticate(Some(b"app"), b"d").unwrap_err(),
            AuthError::WrongPass
        );
        assert_eq!(
            users.authenticate(Some(b"nobody"), b"a").unwrap_err(),
            AuthError::WrongPass
        );
    }

    #[test]
    fn disabled_user_and_nopass_default() {
        let mut off = user("app", Some("a"));
        off.enabled = false;
        let users = Users::from_config(&[user("default", None), off]).unwrap();
        assert_eq!(
            users.initial().map(|u| u.name.clone()).as_deref(),
            Some("default")
        );
        assert_eq!(
            users.authenticate(Some(b"app"), b"a").unwrap_err(),
            AuthError::WrongPass
        );
        assert_eq!(
            users.authenticate(None, b"x").unwrap_err(),
            AuthError::DefaultHasNoPassword
        );
        assert!(users.authenticate(Some(b"default"), b"x").is_ok());
        assert!(Users::from_config(&[]).is_none());
        // No `default` listed: every client must authenticate.
        let users = Users::from_config(&[user("app", Some("a"))]).unwrap();
        assert!(users.initial().is_none());
        assert_eq!(
            users.authenticate(None, b"a").unwrap_err(),
            AuthError::WrongPass
        );
    }

    #[test]
    fn select_by_password_picks_the_user_whose_password_it_is() {
        let by_pw = |name: &str, pw: &str| {
            let mut u = user(name, Some(pw));
            u.select_by_password = true;
            u
        };
        let mut off = by_pw("off", "o");
        off.enabled = false;
        let plain = user("plain", Some("p"));
        let users =
            Users::from_config(&[user("default", None), by_pw("r", "rpw"), off, plain]).unwrap();
        let who = |name: Option<&[u8]>, pw: &[u8]| {
            users.authenticate(name, pw).map(|u| u.name.to_string())
        };
        assert_eq!(who(None, b"rpw").as_deref(), Ok("r"));
        assert_eq!(who(Some(b"default"), b"rpw").as_deref(), Ok("r"));
        assert_eq!(who(Some(b"r"), b"rpw").as_deref(), Ok("r"));
        // Not for a disabled user, nor for one that is not marked, nor under another name.
        assert_eq!(who(None, b"o"), Err(AuthError::DefaultHasNoPassword));
        assert_eq!(who(None, b"p"), Err(AuthError::DefaultHasNoPassword));
        assert_eq!(who(Some(b"plain"), b"rpw"), Err(AuthError::WrongPass));
        // `default` without a password still takes any password under its name.
        assert_eq!(who(Some(b"default"), b"x").as_deref(), Ok("default"));
    }

    #[test]
    fn star_short_circuits_and_debug_hides_digests() {
        let mut u = user("app", Some("a"));
        u.keys = vec!["*".into()];
        u.channels = vec!["*".into()];
        let u = User::from_config(&u);
        assert!(u.unrestricted && u.readable.allows(b"") && u.writable.allows(b"x"));
        assert!(!format!("{u:?}").contains("digest"));
    }
}
