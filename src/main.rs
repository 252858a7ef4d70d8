//! The `meridian` command line: `serve` runs the gateway, `check` validates a config (or a lab
//! topology), `reload` asks a running gateway to reload its config, `lab` and `drill` run the
//! multi-DC lab.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use meridian::config::{Config, Overrides};

#[derive(Parser)]
#[command(
    name = "meridian",
    version,
    about = "A multi-datacenter aware gateway for Redis Cluster"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file (YAML).
        #[arg(short, long)]
        config: PathBuf,
        /// Override `listen`.
        #[arg(long)]
        listen: Option<String>,
        /// Override `workers` (0 = one per core).
        #[arg(long)]
        workers: Option<usize>,
        /// The datacenter this gateway serves (overrides `local_dc`).
        #[arg(long, env = "MERIDIAN_LOCAL_DC")]
        local_dc: Option<String>,
        /// Log line format (wins over `log.format`; default text).
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
        /// Log filter, e.g. `info` or `meridian=debug` (wins over `log.level`; RUST_LOG wins
        /// over both).
        #[arg(long)]
        log_level: Option<String>,
    },
    /// Ask a running gateway to reload its config file (POST /reload on its admin endpoint).
    /// Credentials: the admin token (from `--token-file`, else the config's
    /// `admin.token_file`), or `--user` with the password in MERIDIAN_ADMIN_PASSWORD.
    Reload {
        /// The gateway's config file: where its admin endpoint and token are.
        #[arg(short, long)]
        config: PathBuf,
        /// Admin endpoint address (overrides the config's `admin.listen`).
        #[arg(long)]
        admin: Option<String>,
        /// File holding the admin token (overrides the config's `admin.token_file`).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// A gateway user with the admin role (Basic credentials) instead of the token.
        #[arg(long)]
        user: Option<String>,
    },
    /// Validate a config file (or a lab topology): print every error with its key and line,
    /// exit non-zero if any.
    Check {
        #[arg(short, long, required_unless_present = "topology")]
        config: Option<PathBuf>,
        /// Validate a lab topology file instead (topologies/*.yaml).
        #[arg(long, conflicts_with = "config")]
        topology: Option<PathBuf>,
    },
    /// Run a multi-DC lab on loopback: `lab up|down|status FILE`.
    Lab(meridian::lab::cli::LabArgs),
    /// Break a lab on purpose under load and report what clients saw.
    Drill(meridian::lab::cli::DrillArgs),
    /// Convert a predixy config to a meridian YAML config, printed on stdout.
    ImportPredixy {
        /// predixy's main config file (Include directives are followed relative to it).
        file: PathBuf,
    },
}

fn reload(
    config: &std::path::Path,
    admin: Option<String>,
    token_file: Option<PathBuf>,
    user: Option<String>,
    password: Option<String>,
) -> ExitCode {
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let addr = admin.unwrap_or_else(|| cfg.admin.listen.trim().to_string());
    if addr.is_empty() {
        eprintln!(
            "meridian: admin.listen is off in {}; give --admin",
            config.display()
        );
        return ExitCode::FAILURE;
    }
    let authorization = match (user, token_file.or(cfg.admin.token_file)) {
        (Some(user), _) => {
            let Some(password) = password else {
                eprintln!("meridian: --user needs the password in MERIDIAN_ADMIN_PASSWORD");
                return ExitCode::FAILURE;
            };
            Some(meridian::admin::auth::basic_header(&user, &password))
        }
        (None, Some(file)) => match meridian::admin::auth::Token::load(&file) {
            Ok(t) => Some(t.bearer_header()),
            Err(e) => {
                eprintln!("meridian: admin token: {e}");
                return ExitCode::FAILURE;
            }
        },
        (None, None) => None,
    };
    match meridian::reload::cli::post_reload(&addr, authorization.as_deref()) {
        Ok((200, body)) => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("meridian: reload answered {status}: {body}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("meridian: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::ImportPredixy { file } => {
            let dir = file.parent().map(PathBuf::from).unwrap_or_default();
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("meridian: cannot read {}: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            };
            let include = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
            match meridian::predixy::convert(&text, &include) {
                Ok(yaml) => {
                    print!("{yaml}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("meridian: {}: {e}", file.display());
                    ExitCode::FAILURE
                }
            }
        }
        Command::Lab(args) => meridian::lab::cli::run_lab(args),
        Command::Drill(args) => meridian::lab::cli::run_drill(args),
        Command::Check {
            topology: Some(file),
            ..
        } => meridian::lab::cli::check_topology(&file),
        Command::Check { config: None, .. } => ExitCode::FAILURE,
        Command::Check {
            config: Some(config),
            ..
        } => match Config::load(&config) {
            Ok(cfg) => {
                for w in meridian::config::warnings(&cfg) {
                    eprintln!("{}: warning: {w}", config.display());
                }
                // The certificate files must load, as `serve` would load them.
                if let Err(e) = meridian::tls::TlsState::from_config(&cfg) {
                    eprintln!("{}: {e}", config.display());
                    return ExitCode::FAILURE;
                }
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::FAILURE
            }
        },
        Command::Reload {
            config,
            admin,
            token_file,
            user,
        } => {
            // From the environment only: a password on the command line shows in `ps`.
            let password = std::env::var("MERIDIAN_ADMIN_PASSWORD").ok();
            reload(&config, admin, token_file, user, password)
        }
        Command::Serve {
            config,
            listen,
            workers,
            local_dc,
            log_format,
            log_level,
        } => {
            let overrides = Overrides {
                listen,
                workers,
                local_dc,
            };
            let loaded = Config::load(&config).and_then(|c| c.with_overrides(&overrides));
            let cfg = match loaded {
                Ok(c) => c,
                Err(errors) => {
                    eprintln!("{errors}");
                    return ExitCode::FAILURE;
                }
            };
            let format = log_format.map(|f| match f {
                LogFormat::Text => meridian::config::LogFormat::Text,
                LogFormat::Json => meridian::config::LogFormat::Json,
            });
            // Kept until the process ends: dropping it stops the log file writer.
            let _log_guard = match meridian::logging::init(&cfg.log, format, log_level.as_deref()) {
                Ok(g) => g,
                Err(e) => {
                    eprintln!("meridian: {e}");
                    return ExitCode::FAILURE;
                }
            };
            for w in meridian::config::warnings(&cfg) {
                tracing::warn!("{w}");
            }
            match meridian::server::run_with(cfg, Some(&config), overrides) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("meridian: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
