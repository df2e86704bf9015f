// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask test`, what CI runs: the cargo commands of [`CHECKS`],
//! then the kernel stages with the host tests among them.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::report::{Counts, Report};
use crate::{cargo, kernel, prereq};

const CLIPPY: &str = "clippy --quiet";
const DENY: &str = "-- -D warnings -D clippy::undocumented_unsafe_blocks";
const KOBJ: &str = "--target x86_64-unknown-none --target-dir target/kobj";
const DOC: &str = r#"doc --quiet --no-deps --all-features --package gmem-kmap"#;

/// The checks before the host tests, each `cargo` with these arguments.
const CHECKS: &[&[&str]] = &[
    &["fmt --all -- --check"],
    &[CLIPPY, "--workspace --all-targets --all-features", DENY],
    &[CLIPPY, "--lib --features ffi", KOBJ, DENY],
    &[DOC, r#"--config build.rustdocflags=["-D","warnings"]"#],
];

/// Runs every check, the boot test's stages last unless `boot` is false;
/// true when all passed.
pub fn run(boot: bool) -> bool {
    let mut report = Report::default();
    let prerequisites = "prerequisites (rustup target and components, cc, binutils)";
    report.stage(prerequisites, prereq::ensure);
    if report.failed > 0 {
        return report.finish();
    }
    for args in CHECKS {
        check(&mut report, args);
    }
    // The host tests read kunit.py from the kernel tree, unpacked first.
    let opts = kernel::Options::default();
    let host_tests = |report: &mut Report| {
        check(report, &["test --no-fail-fast --workspace --all-features"]);
    };
    kernel::test(&mut report, boot.then_some(&opts), host_tests);
    report.finish()
}

/// Runs `cargo <args>` (each split at spaces) as the stage of that name.
fn check(report: &mut Report, args: &[&str]) {
    let args: Vec<_> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    let run = || run_counted(cargo().args(&args));
    report.counted(&format!("cargo {}", args.join(" ")), run);
}

/// `cargo xtask header`: rewrites the generated header.
pub fn bless_header() -> bool {
    let args = "test --quiet --all-features --test c_header header_is_generated";
    let mut cmd = cargo();
    cmd.args(args.split(' ')).env("GMEM_KMAP_BLESS", "1");
    run_counted(&mut cmd)
        .map_err(|(why, ..)| eprintln!("{why}"))
        .is_ok()
}

/// Runs `cmd`, echoing its output: the sum of its `cargo test` result
/// lines, or one check passed when it printed none.
fn run_counted(cmd: &mut Command) -> Counts {
    let spawned = cmd.stdout(Stdio::piped()).spawn();
    let mut child = spawned.map_err(|e| (format!("cannot run {cmd:?}: {e}"), 0, 1))?;
    let (mut passed, mut failed) = (0, 0);
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    for line in stdout.lines().map_while(Result::ok) {
        println!("{line}");
        let (p, f) = parse_result_line(&line).unwrap_or_default();
        (passed, failed) = (passed + p, failed + f);
    }
    match child.wait() {
        Ok(status) if status.success() && passed + failed == 0 => Ok((1, 0)),
        Ok(status) if status.success() => Ok((passed, failed)),
        Ok(status) => Err((status.to_string(), passed, failed)),
        Err(e) => Err((e.to_string(), passed, failed)),
    }
}

/// `test result: ok. 16 passed; 0 failed; ...` → (16, 0).
fn parse_result_line(line: &str) -> Option<(u32, u32)> {
    let rest = line.strip_prefix("test result: ")?;
    let mut counts = rest
        .split(';')
        .map(|p| p.split_whitespace().rev().nth(1)?.parse().ok());
    Some((counts.next()??, counts.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_are_counted_from_their_exit_and_result_lines() {
        let sh = |script: &str| run_counted(Command::new("sh").args(["-c", script]));
        let result = "echo 'test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured'";
        assert_eq!(sh(&format!("{result}; {result}")), Ok((6, 2)));
        assert_eq!(sh(&format!("{result}; exit 101")).unwrap_err().1, 3);
        assert_eq!(
            sh("echo 'test result: ok. many passed; 0 failed'"),
            Ok((1, 0))
        );
        assert_eq!(sh("exit 1"), Err(("exit status: 1".into(), 0, 0)));
    }
}
