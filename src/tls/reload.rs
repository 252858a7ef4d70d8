//! What triggers a certificate reload: SIGHUP, and a change to a certificate file on disk
//! (watched with `notify`, debounced so a tool writing cert and key one after the other
//! causes one reload). Both call [`TlsState::reload`].

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ::notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::TlsState;

/// Quiet time after the last file event before reloading.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Reloads `tls` and logs the outcome; `why` says what asked for it.
pub fn reload_logged(tls: &TlsState, why: &str) {
    let errors = tls.reload();
    if errors.is_empty() {
        info!(trigger = why, "TLS certificates reloaded");
    }
    for e in errors {
        warn!(trigger = why, error = %e, "TLS certificates not reloaded; the previous ones stay in force");
    }
}

/// Reloads on every SIGHUP until the task is dropped.
pub async fn on_sighup(tls: Arc<TlsState>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        warn!("cannot listen for SIGHUP; TLS certificates reload on file change only");
        return std::future::pending().await;
    };
    while hup.recv().await.is_some() {
        reload_logged(&tls, "SIGHUP");
    }
}

/// Reloads when one of the watched files changes. Directories are watched (not the files), so
/// a file replaced by rename — as cert tools and Kubernetes secret mounts do — is seen too.
pub async fn on_file_change(tls: Arc<TlsState>) {
    let files: HashSet<PathBuf> = tls.watched_files().into_iter().map(absolute).collect();
    if files.is_empty() {
        return;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let wanted = files.clone();
    let handler = move |event: ::notify::Result<::notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
            && event.paths.iter().any(|p| wanted.contains(p))
        {
            let _ = tx.send(());
        }
    };
    let mut watcher = match ::notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            warn!(error = %e, "cannot watch TLS certificate files; reload with SIGHUP");
            return;
        }
    };
    let dirs: HashSet<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(PathBuf::from))
        .collect();
    for dir in &dirs {
        if let Err(e) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            warn!(dir = %dir.display(), error = %e, "cannot watch a TLS certificate directory");
        }
    }
    while rx.recv().await.is_some() {
        // Debounce: wait until the files are quiet for a moment.
        loop {
            match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_) => break,
            }
        }
        reload_logged(&tls, "file change");
    }
}

/// `path` made absolute against the working directory (the watcher reports absolute paths).
fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}
