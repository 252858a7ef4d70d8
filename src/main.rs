//! The `meridian` command line: `serve` runs the gateway, `check` validates a config.

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
    /// Validate a config file: print every error with its key and line, exit non-zero if any.
    Check {
        #[arg(short, long)]
        config: PathBuf,
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
        Command::Check { config } => match Config::load(&config) {
            Ok(_) => {
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
            match meridian::server::run(cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("meridian: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
