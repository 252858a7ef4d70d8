//! Hot reload: read the config file again, validate it, and put it in force without dropping
//! a client. Triggered by SIGHUP, `POST /reload` on the admin endpoint (`meridian reload`),
//! or the optional file watch ([`watch`]).
//!
//! A file that does not parse or validate changes nothing: the error is logged, counted and
//! shown in `/api/state`. A valid one is swapped in as a new immutable snapshot
//! ([`Shared::swap_config`]); workers see the new version on their next request, the prober
//! and refresher on their next turn, and the refresher re-places nodes in DCs at once.
//! Settings only a restart applies ([`diff`]) keep their running values and are reported as
//! "needs restart".

pub mod cli;
pub mod diff;
pub mod watch;

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tracing::warn;

use crate::config::Config;
use crate::events::EventKind;
use crate::shared::Shared;

/// What one reload did, as the admin endpoint answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Whether a new config is in force.
    pub ok: bool,
    /// The config version in force after the attempt.
    pub version: u64,
    /// Changed settings that keep their running value until a restart.
    pub needs_restart: Vec<String>,
    /// Why the file was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Held for the whole of a reload.
static RELOADING: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Reads the config file again and puts it in force if it is valid. `trigger` names what
/// asked (`SIGHUP`, `admin`, `watch`) in the log and the event.
pub fn reload(shared: &Shared, trigger: &str) -> Outcome {
    // SIGHUP, the admin endpoint and the watch run on different threads: one reload at a
    // time, so each compares against the config the previous one put in force.
    let _one_at_a_time = RELOADING.lock();
    let loaded = match &shared.config_path {
        None => Err("the gateway was not started from a config file".to_string()),
        Some(path) => {
            let overrides = shared.overrides.lock().clone();
            Config::load(path)
                .and_then(|c| c.with_overrides(&overrides))
                .map_err(|e| e.to_string())
        }
    };
    match loaded {
        Ok(new) => apply(shared, new, trigger),
        Err(error) => refuse(shared, error, trigger),
    }
}

fn refuse(shared: &Shared, error: String, trigger: &str) -> Outcome {
    {
        let mut status = shared.reload_status.lock();
        status.last_reload_ms = Some(unix_ms());
        status.last_error = Some(error.clone());
        status.errors += 1;
    }
    shared.events.record(
        EventKind::ReloadFailed,
        None,
        None,
        None,
        format!("reload ({trigger}) refused, the running config stays: {error}"),
    );
    Outcome {
        ok: false,
        version: shared.config_version(),
        needs_restart: Vec::new(),
        error: Some(error),
    }
}

fn apply(shared: &Shared, new: Config, trigger: &str) -> Outcome {
    let old = shared.config();
    let (new, restart) = diff::split_restart_only(&old, new);
    for w in crate::config::warnings(&new) {
        warn!("{w}");
    }
    // Hook (TLS, another branch): reload the certificates named by the new config here,
    // before the swap, so a bad certificate refuses the whole reload.
    // Latency monitors: `swap_config` puts a changed set in force before the version moves;
    // each worker makes fresh histograms for it when it sees the new version.
    let version = shared.swap_config(new);
    // The refresher re-reads the map now: the new DC map, seeds and node placement apply
    // without waiting for `cluster.refresh_interval`.
    shared.request_refresh();
    let needs_restart: Vec<String> = restart.iter().map(|k| k.to_string()).collect();
    {
        let mut status = shared.reload_status.lock();
        status.last_reload_ms = Some(unix_ms());
        status.last_error = None;
        status.needs_restart = needs_restart.clone();
        status.ok += 1;
    }
    let mut message = format!("config version {version} in force ({trigger})");
    if !restart.is_empty() {
        message.push_str(&format!(
            "; needs restart (running values kept): {}",
            restart.join(", ")
        ));
    }
    shared
        .events
        .record(EventKind::Reload, None, None, None, message);
    Outcome {
        ok: true,
        version,
        needs_restart,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_file_swaps_a_bad_one_changes_nothing() {
        let dir = std::env::temp_dir().join(format!("meridian-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("m.yaml");
        let base = "cluster: { seeds: [127.0.0.1:7001] }\nworkers: 1\n";
        std::fs::write(&file, base).unwrap();
        let overrides = crate::config::Overrides {
            local_dc: None,
            listen: Some("127.0.0.1:0".into()),
            workers: None,
        };
        let config = Config::load(&file).unwrap().with_overrides(&overrides);
        let shared = Shared::from_file(config.unwrap(), Some(file.clone()));
        *shared.overrides.lock() = overrides;

        std::fs::write(&file, format!("{base}breaker: {{ failure_limit: 9 }}\n")).unwrap();
        let out = reload(&shared, "test");
        assert!(out.ok && out.error.is_none(), "{out:?}");
        assert_eq!(out.version, 2);
        // The command line's --listen is applied again, so it is no change.
        assert!(out.needs_restart.is_empty(), "{out:?}");
        assert_eq!(shared.config().breaker.failure_limit, 9);
        assert_eq!(shared.config().listen, "127.0.0.1:0");

        std::fs::write(&file, format!("{base}breaker: {{ failure_limit: x }}\n")).unwrap();
        let out = reload(&shared, "test");
        assert!(!out.ok);
        assert!(
            out.error
                .as_deref()
                .unwrap()
                .contains("breaker.failure_limit")
        );
        assert_eq!((out.version, shared.config_version()), (2, 2));
        assert_eq!(shared.config().breaker.failure_limit, 9);

        std::fs::write(&file, "cluster: { seeds: [127.0.0.1:7001] }\nworkers: 4\n").unwrap();
        let out = reload(&shared, "test");
        assert_eq!(out.needs_restart, ["workers"]);
        assert_eq!(shared.config().workers, 1);
        assert_eq!(shared.config().breaker.failure_limit, 5);

        let status = shared.reload_status.lock().clone();
        assert_eq!((status.ok, status.errors), (2, 1));
        assert!(status.last_error.is_none());
        let kinds: Vec<_> = shared.events.recent().iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::Reload,
                EventKind::ReloadFailed,
                EventKind::Reload
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
