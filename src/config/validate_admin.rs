//! Checks of the ops sections: `admin` (an address or nothing, and a token wherever one is
//! needed), `log` (a filter that parses, a file path) and `reload` (a sane debounce).

use std::net::SocketAddr;

use super::Config;
use super::checks::Errors;

/// `admin.listen` is empty or `ip:port`; a token file exists in the config whenever the
/// protected endpoints need one (off loopback, or `require_token`).
pub(super) fn check_admin(cfg: &Config, out: &mut Errors) {
    let admin = &cfg.admin;
    if !admin.enabled() {
        return;
    }
    let listen = admin.listen.trim();
    if listen.parse::<SocketAddr>().is_err() {
        out.push(
            "admin.listen",
            format!(
                "`{listen}` is not a socket address; write ip:port, e.g. 127.0.0.1:7618, or \"\" to turn the endpoint off"
            ),
        );
        return;
    }
    if admin.token_file.is_some() {
        if admin
            .token_file
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            out.push(
                "admin.token_file",
                "is empty; give the path of a token file",
            );
        }
        return;
    }
    if admin.require_token {
        out.push(
            "admin.token_file",
            "required by admin.require_token: give a file holding the bearer token",
        );
    } else if admin.token_required() == Some(true) {
        out.push(
            "admin.token_file",
            format!(
                "required because admin.listen ({listen}) is not a loopback address: every endpoint but /healthz, /readyz and /metrics then needs `Authorization: Bearer <token>`; give a file holding the token, or listen on 127.0.0.1"
            ),
        );
    }
}

/// `log.level` parses as a tracing filter; `log.file` names a file; `reload.debounce` is
/// between 10ms and 60s.
pub(super) fn check_log_reload(cfg: &Config, out: &mut Errors) {
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&cfg.log.level) {
        out.push(
            "log.level",
            format!(
                "`{}` is not a log filter ({e}); write e.g. info, debug or meridian=debug,warn",
                cfg.log.level
            ),
        );
    }
    if let Some(file) = &cfg.log.file
        && (file.file_name().is_none() || file.as_os_str().is_empty())
    {
        out.push("log.file", format!("`{}` names no file", file.display()));
    }
    let d = cfg.reload.debounce;
    if d < std::time::Duration::from_millis(10) || d > std::time::Duration::from_secs(60) {
        out.push(
            "reload.debounce",
            format!(
                "{} is out of range; give 10ms..60s",
                super::format_duration(d)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::config::validate::tests::{BASE, errors, one};

    #[test]
    fn admin_defaults_to_loopback_and_may_be_off() {
        assert!(errors(BASE).is_empty());
        assert!(errors(&format!("{BASE}admin:\n  listen: \"\"\n")).is_empty());
        assert!(errors(&format!("{BASE}admin:\n  listen: 127.0.0.2:9000\n")).is_empty());
        assert!(errors(&format!("{BASE}admin:\n  listen: \"[::1]:9000\"\n")).is_empty());
    }

    #[test]
    fn admin_listen_must_be_an_address() {
        one(
            &format!("{BASE}admin:\n  listen: localhost:7618\n"),
            "admin.listen",
            Some(7),
            "not a socket address",
        );
    }

    #[test]
    fn non_loopback_admin_needs_a_token_file() {
        one(
            &format!("{BASE}admin:\n  listen: 0.0.0.0:7618\n"),
            "admin.token_file",
            Some(6),
            "not a loopback address",
        );
        one(
            &format!("{BASE}admin:\n  listen: 10.1.2.3:7618\n  require_token: false\n"),
            "admin.token_file",
            Some(6),
            "not a loopback address",
        );
        let with_token = format!("{BASE}admin:\n  listen: 0.0.0.0:7618\n  token_file: /etc/t\n");
        assert!(errors(&with_token).is_empty());
    }

    #[test]
    fn require_token_needs_a_token_file() {
        one(
            &format!("{BASE}admin:\n  require_token: true\n"),
            "admin.token_file",
            Some(6),
            "admin.require_token",
        );
    }
}
