//! Setting up the log: format (text or JSON lines), filter, and where lines go (stderr, or a
//! file rotated by time through tracing-appender's non-blocking writer).
//!
//! The command line's `--log-format` / `--log-level`, when given, win over the `log` section;
//! `RUST_LOG`, when set, wins over both for the filter. Logging is set up once: a reload that
//! changes `log` is reported as "needs restart".

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};

use crate::config::{LogConfig, LogFormat, LogRotation};

/// Why the log could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log.file: cannot open {path}: {err}")]
    File { path: String, err: String },
    #[error("log.level: {0}")]
    Filter(String),
}

/// Installs the global subscriber. The returned guard flushes the file writer when dropped:
/// keep it for the life of the process.
pub fn init(
    cfg: &LogConfig,
    format: Option<LogFormat>,
    level: Option<&str>,
) -> Result<Option<WorkerGuard>, LogError> {
    let level = level.unwrap_or(&cfg.level);
    let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(f) => f,
        Err(_) => tracing_subscriber::EnvFilter::try_new(level)
            .map_err(|e| LogError::Filter(format!("`{level}`: {e}")))?,
    };
    let format = format.unwrap_or(cfg.format);
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let Some(path) = &cfg.file else {
        let builder = builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr);
        // A subscriber installed earlier (tests) stays; that is not an error.
        let _ = match format {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
        return Ok(None);
    };
    let fail = |err: String| LogError::File {
        path: path.display().to_string(),
        err,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .ok_or_else(|| fail("no file name".into()))?;
    let mut appender = RollingFileAppender::builder()
        .rotation(match cfg.rotation {
            LogRotation::Daily => Rotation::DAILY,
            LogRotation::Hourly => Rotation::HOURLY,
            LogRotation::Never => Rotation::NEVER,
        })
        .filename_prefix(stem);
    if let Some(ext) = path.extension() {
        appender = appender.filename_suffix(ext.to_string_lossy().into_owned());
    }
    let appender = appender.build(dir).map_err(|e| fail(e.to_string()))?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let builder = builder.with_ansi(false).with_writer(writer);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    Ok(Some(guard))
}
