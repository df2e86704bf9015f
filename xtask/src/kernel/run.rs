// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Running the long commands (make, QEMU): output into a log file, a
//! progress line on the console every 20 s, an optional hard timeout.

use anyhow::{Context as _, Result, anyhow};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(20);

/// How a logged command ended.
pub enum Ended {
    Exited(ExitStatus),
    /// Killed after the timeout.
    TimedOut,
}

/// Runs `cmd` with stdout and stderr into `log` (truncated first). Every
/// 20 s prints the elapsed time and the last log line `progress` accepts;
/// kills the command when `timeout` passes.
pub fn logged(
    cmd: &mut Command,
    log: &Path,
    timeout: Option<Duration>,
    progress: fn(&str) -> bool,
) -> Result<Ended> {
    let file = File::create(log).with_context(|| format!("create {}", log.display()))?;
    let err = file.try_clone()?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    let start = Instant::now();
    let mut next = PROGRESS_EVERY;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Ended::Exited(status));
        }
        let elapsed = start.elapsed();
        if timeout.is_some_and(|t| elapsed >= t) {
            // SIGKILL to the one process this function started.
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Ended::TimedOut);
        }
        if elapsed >= next {
            let last = tail(log, 50)
                .into_iter()
                .rev()
                .find(|l| progress(l))
                .unwrap_or_default();
            // Serial output may carry terminal escapes; print text only.
            let last: String = last.chars().filter(|c| !c.is_control()).collect();
            println!("    [{}] {}", clock(elapsed), last.trim());
            next += PROGRESS_EVERY;
        }
        sleep(Duration::from_millis(250));
    }
}

/// The last `n` lines of a file (from its last 64 KiB), `\r` removed.
pub fn tail(path: &Path, n: usize) -> Vec<String> {
    let mut bytes = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
        let _ = f.read_to_end(&mut bytes);
    }
    let text = String::from_utf8_lossy(&bytes).replace('\r', "");
    let lines: Vec<String> = text.lines().map(String::from).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

/// `1m05s` style.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}m{:02}s", s / 60, s % 60)
}

/// Runs a short command; its stdout, or an error with its stderr.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(anyhow!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
