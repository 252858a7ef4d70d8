//! Command lines of `meridian lab up|down|status`, `meridian drill` and
//! `meridian check --topology`, each run to an exit code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::drill::{self, DrillOptions, Scenario};
use super::options::LabOptions;
use super::up;
use super::{LabError, LabSpec, Plan};

/// `meridian lab …`
#[derive(Debug, Args)]
pub struct LabArgs {
    /// What to do with the lab.
    #[command(subcommand)]
    pub command: LabCommand,
}

/// Where the lab lives.
#[derive(Debug, Clone, Args)]
pub struct Where {
    /// Topology file, e.g. topologies/three-regions.yaml.
    pub file: PathBuf,
    /// Lab directory (state, logs, node dirs); default /tmp/meridian-lab-<name>.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Added to every port of the topology, to run two labs of one topology side by side.
    #[arg(long, default_value_t = 0)]
    pub port_offset: u16,
}

/// `lab` subcommands.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Start the nodes, the cluster, the delay relays and one gateway per DC.
    Up {
        #[command(flatten)]
        at: Where,
        /// Stay in the foreground; Ctrl-C tears the lab down.
        #[arg(long)]
        foreground: bool,
    },
    /// Stop everything and remove the lab directory.
    Down {
        #[command(flatten)]
        at: Where,
    },
    /// Show the nodes (live roles), gateways and processes.
    Status {
        #[command(flatten)]
        at: Where,
    },
}

/// `meridian drill …`
#[derive(Debug, Args)]
pub struct DrillArgs {
    #[command(flatten)]
    at: Where,
    /// kill-master, hang-node, partition-dc, slow-link or promote-remote.
    #[arg(long)]
    scenario: String,
    /// Planned length; fault at 1/3, heal at 2/3 (extended to cover the settle window).
    #[arg(long, default_value = "20s")]
    duration: String,
    /// Requests per second per gateway.
    #[arg(long, default_value_t = 400)]
    rate: u32,
    /// Shard whose master is the target.
    #[arg(long, default_value_t = 0)]
    shard: usize,
    /// partition-dc: the DC to cut off; slow-link: the far end of the slowed link.
    #[arg(long)]
    dc: Option<String>,
    /// slow-link: the link's new round trip, ms.
    #[arg(long)]
    latency_ms: Option<f64>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the report as a self-contained HTML page to this file.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Leave a lab the drill started running afterwards.
    #[arg(long)]
    keep: bool,
    /// Seed of the load's random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn runtime() -> Result<tokio::runtime::Runtime, LabError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| LabError::io("start the async runtime", e))
}

/// Prints to stdout, ignoring a closed pipe (`meridian lab status | head` must not panic).
fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{text}");
}

fn fail(e: &LabError) -> ExitCode {
    eprintln!("meridian: {e}");
    ExitCode::from(2)
}

fn options(at: &Where) -> Result<LabOptions, LabError> {
    LabOptions::new(&at.file, at.dir.clone(), at.port_offset)
}

/// Runs `meridian lab …`.
pub fn run_lab(args: LabArgs) -> ExitCode {
    let result = runtime().and_then(|rt| {
        rt.block_on(async {
            match args.command {
                LabCommand::Up { at, foreground } => {
                    let opts = options(&at)?;
                    if foreground {
                        up::supervise(opts).await?;
                    } else {
                        let state = up::up_background(&opts).await?;
                        say(&super::status::up_table(&state));
                        say(&format!("logs and state: {}", opts.dir.display()));
                    }
                    Ok(())
                }
                LabCommand::Down { at } => {
                    let opts = options(&at)?;
                    say(&up::down(&opts.dir).await?);
                    Ok(())
                }
                LabCommand::Status { at } => {
                    let opts = options(&at)?;
                    say(&super::status::status(&opts).await?);
                    Ok(())
                }
            }
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Runs `meridian drill …`: exit 0 when every invariant held, 1 when one broke, 2 when the
/// drill could not run.
pub fn run_drill(args: DrillArgs) -> ExitCode {
    let prepared = (|| -> Result<DrillOptions, LabError> {
        let scenario: Scenario = args.scenario.parse().map_err(LabError::Scenario)?;
        let duration: Duration = crate::config::parse_duration(&args.duration)
            .map_err(|e| LabError::Scenario(format!("--duration: {e}")))?;
        Ok(DrillOptions {
            lab: options(&args.at)?,
            scenario,
            duration,
            rate: args.rate,
            shard: args.shard,
            dc: args.dc.clone(),
            latency_ms: args.latency_ms,
            keep: args.keep,
            seed: args.seed,
        })
    })();
    let report = prepared.and_then(|opts| runtime().and_then(|rt| rt.block_on(drill::run(opts))));
    let report = match report {
        Ok(report) => report,
        Err(e) => return fail(&e),
    };
    say(&report.to_table());
    let writes = [
        (&args.json, report.to_json().to_pretty()),
        (&args.html, super::html::render(&report)),
    ];
    for (path, text) in writes {
        if let Some(path) = path {
            if let Err(e) = std::fs::write(path, text) {
                return fail(&LabError::io(format!("write {}", path.display()), e));
            }
            say(&format!("report written to {}", path.display()));
        }
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Runs `meridian check --topology FILE`: validates the file and prints its layout.
pub fn check_topology(path: &Path) -> ExitCode {
    let spec = match LabSpec::load(path) {
        Ok(spec) => spec,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    match Plan::new(&spec, 0) {
        Ok(plan) => {
            say(&format!(
                "{}: ok ({} datacenters, {} shards, {} nodes, {} gateways)",
                path.display(),
                plan.dcs.len(),
                plan.shard_count(),
                plan.nodes.len(),
                plan.gateways.len()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}
