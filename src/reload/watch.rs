//! The optional watch of the config file (`reload.watch`): the file's directory is watched,
//! not the file, because editors and Kubernetes ConfigMap volumes replace a file by renaming
//! another over it (ConfigMaps swap a `..data` symlink), which a watch on the old inode
//! would never see. After `reload.debounce` without further events the file is read and,
//! when its bytes changed since the last look, reloaded.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use ::notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tracing::{info, warn};

use crate::shared::Shared;

/// How often the watch thread looks at the shutdown flag while idle.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Why the watch could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("reload.watch: the gateway was not started from a config file")]
    NoFile,
    #[error("reload.watch: cannot watch {dir}: {err}")]
    Watch { dir: String, err: ::notify::Error },
    #[error("reload.watch: cannot start the watch thread: {0}")]
    Thread(std::io::Error),
}

/// Starts watching when `reload.watch` is on; the watch lives until shutdown.
pub fn start(shared: &Arc<Shared>) -> Result<(), WatchError> {
    let config = shared.config();
    if !config.reload.watch {
        return Ok(());
    }
    let debounce = config.reload.debounce;
    let path = shared.config_path.clone().ok_or(WatchError::NoFile)?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let (tx, rx) = channel();
    let mut watcher = ::notify::recommended_watcher(move |ev| {
        let _ = tx.send(ev);
    })
    .map_err(|err| WatchError::Watch {
        dir: dir.display().to_string(),
        err,
    })?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|err| WatchError::Watch {
            dir: dir.display().to_string(),
            err,
        })?;
    info!(dir = %dir.display(), "watching the config file's directory for changes");
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("meridian-watch".into())
        .spawn(move || run(shared, watcher, rx, path, debounce))
        .map_err(WatchError::Thread)?;
    Ok(())
}

type Events = Receiver<Result<::notify::Event, ::notify::Error>>;

fn run(
    shared: Arc<Shared>,
    _watcher: RecommendedWatcher,
    rx: Events,
    path: PathBuf,
    debounce: Duration,
) {
    let mut last = std::fs::read(&path).ok();
    loop {
        match rx.recv_timeout(IDLE_CHECK) {
            Ok(Err(e)) => {
                warn!(error = %e, "config watch error");
                continue;
            }
            Ok(Ok(_)) => {}
            Err(RecvTimeoutError::Timeout) if shared.is_shutting_down() => return,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Quiet for `debounce` before reading: a rename or an editor's save comes as several
        // events.
        loop {
            match rx.recv_timeout(debounce) {
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        let now = std::fs::read(&path).ok();
        // Events for other files of the directory, or a write of the same bytes: nothing to do.
        if now.is_none() || now == last {
            continue;
        }
        last = now;
        super::reload(&shared, "watch");
    }
}
