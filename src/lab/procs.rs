//! Process plumbing of the lab: finding programs, signals by pid (through `kill(1)`, since the
//! crate forbids `unsafe`), liveness from `/proc`, and log tails for error messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::LabError;

/// A process's state as `/proc/<pid>/stat` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Running or sleeping.
    Running,
    /// Stopped by a signal (SIGSTOP).
    Stopped,
    /// Gone, or a zombie.
    Gone,
}

/// The path of `name` on PATH.
pub fn find_program(name: &str, hint: &'static str) -> Result<PathBuf, LabError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| LabError::Missing {
            program: name.to_string(),
            hint,
        })
}

/// Sends signal `sig` (a name such as `STOP`, `CONT`, `KILL`, `TERM`) to `pid`.
pub fn signal(pid: u32, sig: &str) -> Result<(), LabError> {
    let status = Command::new("kill")
        .args(["-s", sig, &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| LabError::io("run kill(1)", e))?;
    if status.success() {
        Ok(())
    } else {
        Err(LabError::Process {
            what: format!("pid {pid}"),
            message: format!("kill -s {sig} failed ({status})"),
        })
    }
}

/// The state of process `pid`.
pub fn state(pid: u32) -> ProcState {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ProcState::Gone;
    };
    // The state letter follows the command name, which is in parentheses and may hold spaces.
    let letter = stat
        .rfind(')')
        .and_then(|at| stat[at + 1..].split_whitespace().next());
    match letter {
        Some("T") | Some("t") => ProcState::Stopped,
        Some("Z") | Some("X") | None => ProcState::Gone,
        Some(_) => ProcState::Running,
    }
}

/// Whether `pid` is alive (running or stopped).
pub fn alive(pid: u32) -> bool {
    state(pid) != ProcState::Gone
}

/// The command line of `pid`, arguments joined by spaces (empty when gone).
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            raw.split(|&b| b == 0)
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Kills `pid` with SIGKILL if it is alive and its command line contains `marker` (so a pid
/// reused by an unrelated process is left alone). Returns whether it was killed.
pub fn kill_if_ours(pid: u32, marker: &str) -> bool {
    if !alive(pid) || !cmdline(pid).contains(marker) {
        return false;
    }
    // A stopped process dies of SIGKILL too; nothing else to do first.
    signal(pid, "KILL").is_ok()
}

/// The last `n` lines of a (log) file, or a note saying why it could not be read.
pub fn tail(path: &Path, n: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("({} unreadable: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_itself_and_not_the_dead() {
        let me = std::process::id();
        assert_eq!(state(me), ProcState::Running);
        assert!(!cmdline(me).is_empty());
        assert_eq!(state(u32::MAX - 1), ProcState::Gone);
        assert!(!kill_if_ours(u32::MAX - 1, "x"));
    }

    #[test]
    fn stops_and_continues_a_child() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        signal(pid, "STOP").unwrap();
        for _ in 0..100 {
            if state(pid) == ProcState::Stopped {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(state(pid), ProcState::Stopped);
        signal(pid, "CONT").unwrap();
        assert!(kill_if_ours(pid, "sleep"));
        child.wait().unwrap();
    }

    #[test]
    fn missing_program_says_how_to_install() {
        let err = find_program("no-such-program-xyz", "install it").unwrap_err();
        assert!(err.to_string().contains("install it"));
    }
}
