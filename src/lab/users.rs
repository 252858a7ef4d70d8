//! A lab with `users: true`: gateway users with passwords the lab makes itself.
//!
//! `lab up` draws a random password for each lab user and writes them to
//! `<lab dir>/users.secret` (mode 0600, the only place the plaintext is kept); each gateway's
//! config gets a `users` section holding their SHA-256 digests, with `default` disabled, so a
//! client must authenticate before anything else. Every client the lab itself sends through a
//! gateway (the start-up probe, the drill load) logs in as [`LAB_USER`]. Nodes stay without
//! ACLs: the gateways reach them as before.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::LabError;
use super::client::Login;
use crate::config::PasswordDigest;

/// File name of the passwords inside the lab dir.
pub const FILE: &str = "users.secret";
/// The user the lab's own clients log in as: every command, every key and channel.
pub const LAB_USER: &str = "lab";
/// A read-only user, to try what a user without write rights gets.
pub const READER: &str = "reader";

/// Each lab user and its role.
const USERS: [(&str, &str); 2] = [(LAB_USER, "admin"), (READER, "read")];

/// Where the passwords of the lab in `lab_dir` are.
pub fn path(lab_dir: &Path) -> PathBuf {
    lab_dir.join(FILE)
}

/// Draws a new password for every lab user and writes them to [`path`], readable by the owner
/// only (an older file is replaced, never reused).
pub fn make(lab_dir: &Path, topology: &str) -> Result<(), LabError> {
    let file = path(lab_dir);
    let what = |verb: &str| format!("{verb} {}", file.display());
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(LabError::io(what("remove"), e));
        }
        _ => {}
    }
    let mut text = format!(
        "# Gateway users of the meridian lab `{topology}`: NAME PASSWORD, for AUTH NAME PASSWORD.\n\
         # Made by `lab up`, gone with `lab down`; keep it private.\n"
    );
    for (name, _) in USERS {
        text.push_str(&format!("{name} {:032x}\n", rand::random::<u128>()));
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .map_err(|e| LabError::io(what("create"), e))?;
    out.write_all(text.as_bytes())
        .map_err(|e| LabError::io(what("write"), e))
}

/// The lab users and their passwords, read from [`path`].
pub fn read(lab_dir: &Path) -> Result<Vec<Login>, LabError> {
    let file = path(lab_dir);
    let text = std::fs::read_to_string(&file)
        .map_err(|e| LabError::io(format!("read {}", file.display()), e))?;
    let logins = parse(&text);
    if USERS
        .iter()
        .all(|(name, _)| logins.iter().any(|l| l.user == *name))
    {
        Ok(logins)
    } else {
        Err(LabError::Process {
            what: file.display().to_string(),
            message: format!("lacks a password of one of the lab users ({LAB_USER}, {READER})"),
        })
    }
}

fn parse(text: &str) -> Vec<Login> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(user, password)| Login {
            user: user.to_string(),
            password: password.trim().to_string(),
        })
        .collect()
}

/// The login of the lab's own clients: [`LAB_USER`]'s when the lab has users, else none.
pub fn lab_login(lab_dir: &Path, users: bool) -> Result<Option<Login>, LabError> {
    if !users {
        return Ok(None);
    }
    let logins = read(lab_dir)?;
    Ok(logins.into_iter().find(|l| l.user == LAB_USER))
}

/// Stand-in logins for checking a topology's generated configs before any password exists.
pub fn placeholders() -> Vec<Login> {
    USERS
        .iter()
        .map(|(name, _)| Login {
            user: name.to_string(),
            password: "placeholder".into(),
        })
        .collect()
}

/// The `users` section of a gateway config: `default` disabled, then each lab user with the
/// digest of its password (never the password) and its role.
pub fn gateway_section(logins: &[Login]) -> Value {
    let s = |t: &str| Value::String(t.to_string());
    let all = || Value::Sequence(vec![s("*")]);
    let mut default = Mapping::new();
    default.insert(s("name"), s("default"));
    default.insert(s("enabled"), Value::Bool(false));
    let mut out = vec![Value::Mapping(default)];
    for login in logins {
        let Some((_, role)) = USERS.iter().find(|(name, _)| *name == login.user) else {
            continue;
        };
        let digest = PasswordDigest::of(login.password.as_bytes());
        let hex: String = digest.0.iter().map(|b| format!("{b:02x}")).collect();
        let mut user = Mapping::new();
        user.insert(s("name"), s(&login.user));
        user.insert(s("passwords"), Value::Sequence(vec![s(&hex)]));
        user.insert(s("role"), s(role));
        user.insert(s("keys"), all());
        if *role == "admin" {
            user.insert(s("channels"), all());
        }
        out.push(Value::Mapping(user));
    }
    Value::Sequence(out)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::config::Config;
    use crate::config::Role;
    use crate::lab::fixtures::TWO_DC_LAB;
    use crate::lab::gateway_config::render_config;
    use crate::lab::plan::Plan;
    use crate::lab::spec::LabSpec;

    #[test]
    fn passwords_are_random_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("meridian-lab-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        make(&dir, "t").unwrap();
        let first = read(&dir).unwrap();
        let mode = std::fs::metadata(path(&dir)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|l| l.password.len() == 32));
        assert!(!format!("{first:?}").contains(&first[0].password));
        make(&dir, "t").unwrap();
        let second = lab_login(&dir, true).unwrap().unwrap();
        assert_eq!(second.user, LAB_USER);
        assert_ne!(second.password, first[0].password);
        assert_eq!(lab_login(&dir, false).unwrap(), None);
        std::fs::remove_file(path(&dir)).unwrap();
        assert!(read(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gateways_get_digests_and_no_default_user() {
        let text = format!("{TWO_DC_LAB}users: true\n");
        let plan = Plan::new(&LabSpec::parse(&text, "t").unwrap(), 0).unwrap();
        let logins = vec![
            Login {
                user: LAB_USER.into(),
                password: "pw-one".into(),
            },
            Login {
                user: READER.into(),
                password: "pw-two".into(),
            },
        ];
        let dir = Path::new("/lab/tls");
        let rendered = render_config(&plan, &plan.gateways[0], dir, &logins);
        assert!(!rendered.contains("pw-one") && !rendered.contains("pw-two"));
        let cfg = Config::parse(&rendered, "gen").unwrap();
        let names: Vec<&str> = cfg.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["default", LAB_USER, READER]);
        assert!(!cfg.users[0].enabled);
        assert_eq!(cfg.users[1].role, Role::Admin);
        assert_eq!(cfg.users[1].digests, [PasswordDigest::of(b"pw-one")]);
        assert_eq!(cfg.users[2].role, Role::Read);
        let plain = Plan::new(&LabSpec::parse(TWO_DC_LAB, "t").unwrap(), 0).unwrap();
        let cfg = Config::parse(&render_config(&plain, &plain.gateways[0], dir, &[]), "g");
        assert!(cfg.unwrap().users.is_empty());
    }

    #[test]
    fn a_users_lab_keeps_the_users_section_to_itself() {
        let text = format!("{TWO_DC_LAB}  users: []\nusers: true\n");
        let err = LabSpec::parse(&text, "t").unwrap_err().to_string();
        assert!(err.contains("gateway_config.users"), "{err}");
        let text = format!("{TWO_DC_LAB}users: true\n");
        assert!(LabSpec::parse(&text, "t").unwrap().users);
    }
}
