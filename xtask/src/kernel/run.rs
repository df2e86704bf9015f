// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Long commands (make, QEMU) into a log with progress and a timeout; short ones captured.

use anyhow::{Context as _, Result, bail, ensure};
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROGRESS_EVERY: Duration = Duration::from_secs(20);

/// Runs `cmd`, output into `log`, killing it (SIGKILL, only the process
/// started here) when `timeout` passes; on failure prints the log's tail.
pub fn logged(cmd: &mut Command, log: &Path, timeout: Option<Duration>) -> Result<()> {
    let limit = timeout.map_or(String::new(), |t| format!(" (timeout {})", clock(t)));
    println!("    {cmd:?}\n    log: {}{limit}", log.display());
    let file = File::create(log).with_context(|| format!("create {}", log.display()))?;
    cmd.stdin(Stdio::null()).stdout(file.try_clone()?);
    cmd.stderr(file);
    let mut child = cmd.spawn().with_context(|| format!("cannot run {cmd:?}"))?;
    let program = cmd.get_program().to_string_lossy().into_owned();
    let (start, mut next) = (Instant::now(), PROGRESS_EVERY);
    let failure = loop {
        match child.try_wait()? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => break format!("{program} exited with {status}"),
            None => {}
        }
        if timeout.is_some_and(|t| start.elapsed() >= t) {
            let _ = child.kill();
            let _ = child.wait();
            let after = clock(start.elapsed());
            break format!("{program} timed out after {after} and was killed");
        }
        if start.elapsed() >= next {
            let last = tail(log, 1).concat();
            println!("    [{}] {}", clock(start.elapsed()), last.trim());
            next += PROGRESS_EVERY;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    println!("    last 40 lines of {}:", log.display());
    tail(log, 40).iter().for_each(|l| println!("    | {l}"));
    bail!("{failure}; log: {}", log.display())
}

/// The last `n` lines of `path`, control characters (serial `\r`s) removed.
fn tail(path: &Path, n: usize) -> Vec<String> {
    let text = output(Command::new("tail").arg(format!("-n{n}")).arg(path)).unwrap_or_default();
    let text_only = |l: &str| l.replace(|c: char| c.is_control() && c != '\t', "");
    text.lines().map(text_only).collect()
}

/// `make` in `dir` with one job per CPU.
pub fn make(dir: &Path) -> Command {
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut make = Command::new("make");
    make.current_dir(dir).arg(format!("-j{jobs}"));
    make
}

/// `1m05s` style.
fn clock(d: Duration) -> String {
    format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
}

/// Runs a short command: its stdout, or an error with its output.
pub fn output(cmd: &mut Command) -> Result<String> {
    let ran = cmd.output();
    let out = ran.with_context(|| format!("cannot run {cmd:?}"))?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (o, e) = (text(&out.stdout), text(&out.stderr));
    let status = out.status;
    ensure!(status.success(), "{cmd:?} failed ({status}): {o}{e}");
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_command_fails_on_error_or_timeout() {
        let log = std::env::temp_dir().join(format!("xtask-run-{}.log", std::process::id()));
        let timeout = Some(Duration::from_millis(300));
        for (script, want, last) in [
            ("printf 'fi\\rne\\n'", "", "fine"),
            ("echo bad; exit 3", "sh exited with exit status: 3", "bad"),
            ("sleep 5", "sh timed out after 0m00s and was killed", ""),
        ] {
            let got = logged(Command::new("sh").args(["-c", script]), &log, timeout);
            let got = got.err().map(|e| e.to_string()).unwrap_or_default();
            assert_eq!(got.split(';').next(), Some(want));
            assert_eq!(tail(&log, 1).concat(), last);
        }
        let failed = output(Command::new("sh").args(["-c", "echo oops >&2; false"]));
        assert!(failed.unwrap_err().to_string().contains("oops"));
        std::fs::remove_file(&log).unwrap();
    }
}
