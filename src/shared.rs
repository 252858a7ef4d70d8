//! State shared by every worker: config, published snapshots (topology, command table),
//! per-worker statistics, recent events and the shutdown signal.
//!
//! The config and the users are immutable snapshots behind `ArcSwap`: a reload builds new
//! ones and swaps them in, then bumps [`Shared::config_version`]; workers compare that counter
//! once per loop turn and reload their cached view only when it moved.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arc_swap::{ArcSwap, ArcSwapOption};
use parking_lot::Mutex;
use tokio::sync::{Notify, watch};

use crate::acl::Users;
use crate::balance::Balance;
use crate::clients::ClientRegistry;
use crate::command::CommandTable;
use crate::config::Config;
use crate::control::Credentials;
use crate::events::EventLog;
use crate::health::breaker::BreakerParams;
use crate::health::table::HealthTable;
use crate::identity::Identity;
use crate::snapshot::Published;
use crate::stats::StatsRegistry;
use crate::stats::dcs::DcNames;
use crate::stats::requests::CommandNames;
use crate::tls::TlsState;
use crate::topology::Topology;

/// Everything the workers and background tasks share.
pub struct Shared {
    /// The config in force; read it through [`Shared::config`].
    config: ArcSwap<Config>,
    /// Gateway users; `None` when `users` is empty (meridian is open).
    users: ArcSwapOption<Users>,
    /// `users` is set: one plain load for the check every request makes (an `ArcSwap` load
    /// costs ~140 instructions).
    users_on: AtomicBool,
    /// The file the config was read from, when it came from one.
    pub config_path: Option<PathBuf>,
    /// Bumped each time a config is put in force (1 = the one read at start).
    config_version: AtomicU64,
    /// The command line's overrides, applied again at each reload.
    pub overrides: Mutex<crate::config::Overrides>,
    /// Outcome of the last reloads, for `/api/state` and `/metrics`.
    pub reload_status: Mutex<ReloadStatus>,
    /// Recent state changes (breakers, failovers, reloads...).
    pub events: Arc<EventLog>,
    /// DC names reads are counted under: the configured ones, and each one a reload adds.
    stat_dcs: DcNames,
    pub topology: Published<Topology>,
    pub commands: Published<CommandTable>,
    pub stats: StatsRegistry,
    pub clients_registry: ClientRegistry,
    pub health: HealthTable,
    /// Metric ids of command names (see [`CommandTable::number_commands`]).
    pub command_names: CommandNames,
    /// Workers whose listener accepts clients now.
    listening: AtomicUsize,
    /// Clients per worker, for spreading new ones evenly.
    pub balance: Balance,
    /// DC host names resolved for the DC map (`topology::resolve` writes, the refresher reads).
    pub dc_hosts: Mutex<crate::topology::dc_hosts::DcHosts>,
    pub started: Instant,
    /// Run id, port, config file: what INFO says this gateway is.
    pub identity: Identity,
    refresh: Notify,
    next_client_id: AtomicU64,
    clients: AtomicUsize,
    shutdown_tx: watch::Sender<bool>,
    /// The TLS sides in force, set once at start (see [`Shared::set_tls`]).
    tls: OnceLock<Arc<TlsState>>,
}

impl Shared {
    pub fn new(config: Config) -> Arc<Shared> {
        Shared::from_file(config, None)
    }

    /// Shared state for `config`, read from the file at `path`.
    pub fn from_file(config: Config, path: Option<PathBuf>) -> Arc<Shared> {
        let (shutdown_tx, _) = watch::channel(false);
        let breaker = BreakerParams::from_config(&config.breaker);
        let events = Arc::new(EventLog::default());
        // Request metrics are kept only when an admin endpoint can serve them.
        let stats = if config.admin.enabled() {
            StatsRegistry::with_metrics()
        } else {
            StatsRegistry::default()
        };
        let stats = stats.with_latency_monitors(config.latency_monitors());
        let command_names = CommandNames::default();
        let workers = config.effective_workers();
        let mut commands = CommandTable::builtin();
        commands.number_commands(|name| command_names.intern(name));
        let users = Users::from_config(&config.users).map(Arc::new);
        Arc::new(Shared {
            users_on: AtomicBool::new(users.is_some()),
            users: ArcSwapOption::new(users),
            stat_dcs: {
                let dcs = DcNames::default();
                dcs.add(config.datacenters.keys().map(String::as_str));
                dcs
            },
            config: ArcSwap::from_pointee(config),
            config_path: path,
            config_version: AtomicU64::new(1),
            overrides: Mutex::new(Default::default()),
            reload_status: Mutex::new(ReloadStatus::default()),
            topology: Published::new(Topology::empty()),
            commands: Published::new(commands),
            stats,
            clients_registry: ClientRegistry::default(),
            health: HealthTable::new(breaker, events.clone()),
            events,
            command_names,
            listening: AtomicUsize::new(0),
            balance: Balance::new(workers),
            dc_hosts: Mutex::new(Default::default()),
            started: Instant::now(),
            identity: Identity::default(),
            refresh: Notify::new(),
            next_client_id: AtomicU64::new(1),
            clients: AtomicUsize::new(0),
            shutdown_tx,
            tls: OnceLock::new(),
        })
    }

    /// The config in force now. New code reads settings through this (not the field), so a
    /// reload that swaps the config is seen by the next call.
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// The gateway users in force now; `None` when meridian is open.
    pub fn users(&self) -> Option<Arc<Users>> {
        self.users.load_full()
    }

    /// Whether gateway users are configured now (no reference count touched).
    #[inline]
    pub fn has_users(&self) -> bool {
        self.users_on.load(Ordering::Acquire)
    }

    /// Bumped by each config put in force; a worker compares it to the one its cached view
    /// was built for (one atomic load).
    #[inline]
    pub fn config_version(&self) -> u64 {
        self.config_version.load(Ordering::Acquire)
    }

    /// Puts a new config and its users in force (users first, so a config that names a new
    /// user never runs with the old list), then bumps the version workers watch.
    pub fn swap_config(&self, config: Config) -> u64 {
        let users = Users::from_config(&config.users).map(Arc::new);
        let on = users.is_some();
        // The list before the flag: whoever sees the flag on finds the users.
        self.users.store(users);
        self.users_on.store(on, Ordering::Release);
        self.health
            .set_params(BreakerParams::from_config(&config.breaker));
        // Before the version moves: a worker that sees the new version finds the new set, and
        // a node placed in a new DC counts its reads under that DC's name.
        self.stats.set_latency_monitors(config.latency_monitors());
        self.stat_dcs
            .add(config.datacenters.keys().map(String::as_str));
        self.config.store(Arc::new(config));
        self.config_version.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Publishes a command table, its commands numbered for the metrics first.
    pub fn publish_commands(&self, mut table: CommandTable) {
        table.number_commands(|name| self.command_names.intern(name));
        self.commands.store(table);
    }

    /// The DC names reads are counted under, with their DC index: every DC configured at
    /// start or added by a reload, in name order, then `unknown`.
    pub fn dc_names(&self) -> Vec<(usize, Arc<str>)> {
        self.stat_dcs.all()
    }

    /// The DC index of a node placed in `dc` (see [`Shared::dc_names`]); taken when a worker
    /// follows a new topology, not per request.
    pub fn dc_index(&self, dc: Option<&str>) -> usize {
        self.stat_dcs.index(dc)
    }

    /// A worker's listener started (`true`) or stopped accepting clients.
    pub fn set_listening(&self, on: bool) {
        if on {
            self.listening.fetch_add(1, Ordering::AcqRel);
        } else {
            self.listening.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Workers accepting clients now.
    pub fn listening_workers(&self) -> usize {
        self.listening.load(Ordering::Acquire)
    }

    /// Whether a shutdown began.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown_tx.borrow()
    }

    /// Backend credentials from the config.
    pub fn credentials(&self) -> Credentials {
        let config = self.config.load();
        Credentials {
            username: config.cluster.username.clone(),
            password: config.cluster.password.clone(),
            source_address: config.source_address,
            tls: self.tls().and_then(|t| t.client.clone()),
        }
    }

    /// Puts the TLS sides loaded at start in force (once; later calls are ignored: a reload
    /// swaps certificates inside them).
    pub fn set_tls(&self, tls: Arc<TlsState>) {
        let _ = self.tls.set(tls);
    }

    /// The TLS sides in force, if any was set.
    pub fn tls(&self) -> Option<&Arc<TlsState>> {
        self.tls.get()
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
        let max = self.config.load().client.max_clients;
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

/// What the last reloads did, as `/api/state` shows it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReloadStatus {
    /// Unix ms of the last reload attempt, successful or not.
    pub last_reload_ms: Option<u64>,
    /// The error of the last attempt; `None` when it succeeded (or none was made).
    pub last_error: Option<String>,
    /// Settings the last successful reload changed that only a restart applies.
    pub needs_restart: Vec<String>,
    /// Reloads put in force.
    pub ok: u64,
    /// Reloads refused.
    pub errors: u64,
}
