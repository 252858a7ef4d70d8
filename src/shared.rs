//! State shared by every worker: config, published snapshots (topology, command table),
//! per-worker statistics and the shutdown signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::{Notify, watch};

use crate::acl::Users;
use crate::clients::ClientRegistry;
use crate::command::CommandTable;
use crate::config::Config;
use crate::control::Credentials;
use crate::health::breaker::BreakerParams;
use crate::health::table::HealthTable;
use crate::identity::Identity;
use crate::snapshot::Published;
use crate::stats::StatsRegistry;
use crate::topology::Topology;

/// Everything the workers and background tasks share.
pub struct Shared {
    pub config: Arc<Config>,
    /// Gateway users; `None` when `users` is empty (meridian is open).
    pub users: Option<Arc<Users>>,
    pub topology: Published<Topology>,
    pub commands: Published<CommandTable>,
    pub stats: StatsRegistry,
    pub clients_registry: ClientRegistry,
    pub health: HealthTable,
    /// DC host names resolved for the DC map (used by the refresher only).
    pub dc_hosts: tokio::sync::Mutex<crate::topology::dc_hosts::DcHosts>,
    pub started: Instant,
    /// Run id, port, config file: what INFO says this gateway is.
    pub identity: Identity,
    refresh: Notify,
    next_client_id: AtomicU64,
    clients: AtomicUsize,
    shutdown_tx: watch::Sender<bool>,
}

impl Shared {
    pub fn new(config: Config) -> Arc<Shared> {
        let (shutdown_tx, _) = watch::channel(false);
        let breaker = BreakerParams::from_config(&config.breaker);
        Arc::new(Shared {
            users: Users::from_config(&config.users).map(Arc::new),
            config: Arc::new(config),
            topology: Published::new(Topology::empty()),
            commands: Published::new(CommandTable::builtin()),
            stats: StatsRegistry::default(),
            clients_registry: ClientRegistry::default(),
            health: HealthTable::new(breaker),
            dc_hosts: tokio::sync::Mutex::new(Default::default()),
            started: Instant::now(),
            identity: Identity::default(),
            refresh: Notify::new(),
            next_client_id: AtomicU64::new(1),
            clients: AtomicUsize::new(0),
            shutdown_tx,
        })
    }

    /// Backend credentials from the config.
    pub fn credentials(&self) -> Credentials {
        Credentials {
            username: self.config.cluster.username.clone(),
            password: self.config.cluster.password.clone(),
            source_address: self.config.source_address,
        }
    }

    /// Asks the refresher to re-read the cluster map soon.
    pub fn request_refresh(&self) {
        self.refresh.notify_one();
    }

    /// Resolves when a refresh was requested.
    pub async fn refresh_requested(&self) {
        self.refresh.notified().await
    }

    /// A new unique client id (as CLIENT ID reports).
    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a new client; false when `client.max_clients` is reached.
    pub fn admit_client(&self) -> bool {
        let max = self.config.client.max_clients;
        self.clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Forgets a client counted by [`Shared::admit_client`].
    pub fn release_client(&self) {
        self.clients.fetch_sub(1, Ordering::AcqRel);
    }

    /// Clients currently connected.
    pub fn client_count(&self) -> usize {
        self.clients.load(Ordering::Acquire)
    }

    /// Starts a graceful shutdown.
    pub fn shutdown(&self) {
        self.shutdown_tx.send_replace(true);
    }

    /// A receiver that sees `true` once shutdown began.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown_tx.subscribe()
    }
}
