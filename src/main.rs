//! The `meridian` command line: `serve` runs the gateway, `check` validates a config (or a lab
//! topology), `lab` and `drill` run the multi-DC lab.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use meridian::config::Config;

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
        /// Log line format on stderr.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
        /// Log filter, e.g. `info` or `meridian=debug` (RUST_LOG works too).
        #[arg(long, default_value = "info")]
        log_level: String,
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

fn init_logs(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
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
        Command::Serve {
            config,
            listen,
            workers,
            local_dc,
            log_format,
            log_level,
        } => {
            init_logs(log_format, &log_level);
            let loaded = Config::load(&config).and_then(|c| c.with_local_dc(local_dc));
            let mut cfg = match loaded {
                Ok(c) => c,
                Err(errors) => {
                    eprintln!("{errors}");
                    return ExitCode::FAILURE;
                }
            };
            if let Some(l) = listen {
                cfg.listen = l;
            }
            if let Some(w) = workers {
                cfg.workers = w;
            }
            for w in meridian::config::warnings(&cfg) {
                tracing::warn!("{w}");
            }
            match meridian::server::run(cfg, Some(&config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("meridian: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
