// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask test`: what CI runs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context as _, Result, ensure};

use crate::report::Report;
use crate::{cargo, kernel, prereq};

const CLIPPY: &str = "clippy --quiet";
const DENY: &str = "-- -D warnings -D clippy::undocumented_unsafe_blocks";

/// The checks before the host tests: a stage name and `cargo` arguments.
const CHECKS: &[(&str, &[&str])] = &[
    ("cargo fmt --check", &["fmt --all -- --check"]),
    (
        "clippy (host, all targets and features)",
        &[CLIPPY, "--workspace --all-targets --all-features", DENY],
    ),
    (
        "clippy (x86_64-unknown-none, ffi)",
        &[
            CLIPPY,
            "--lib --features ffi --target x86_64-unknown-none --target-dir target/kobj",
            DENY,
        ],
    ),
    (
        "rustdoc (no broken links, no missing docs)",
        &[
            "doc --quiet --no-deps --all-features --package gmem-kmap --config build.rustdocflags=[\"-D\",\"warnings\"]",
        ],
    ),
];

/// `cargo` with `args`, each split at spaces.
fn cargo_with(args: &[&str]) -> Command {
    let mut cmd = cargo();
    cmd.args(args.iter().flat_map(|a| a.split_whitespace()));
    cmd
}

/// Runs every check, the boot test's stages last unless `boot` is false;
/// true when all passed.
pub fn run(boot: bool) -> bool {
    let mut report = Report::default();
    report.stage(
        "prerequisites (rustup target and components, cc, binutils)",
        prereq::ensure,
    );
    if report.failed > 0 {
        return report.finish();
    }
    for (name, args) in CHECKS {
        report.stage(name, || run_ok(&mut cargo_with(args)));
    }
    // The host tests read kunit.py from the kernel tree, so the tree is
    // unpacked first.
    let opts = kernel::Options::default();
    kernel::test(&mut report, boot.then_some(&opts), |report| {
        report.counted("cargo test (host)", || {
            cargo_test(&mut cargo_with(&[
                "test --no-fail-fast --workspace --all-features",
            ]))
        });
    });
    report.finish()
}

/// `cargo xtask header`: rewrites the generated header.
pub fn bless_header() -> bool {
    let mut cmd = cargo_with(&["test --quiet --all-features --test c_header header_is_generated"]);
    run_ok(cmd.env("GMEM_KMAP_BLESS", "1"))
        .map_err(|e| eprintln!("{e:#}"))
        .is_ok()
}

fn run_ok(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    ensure!(status.success(), "{status}");
    Ok(())
}

/// Runs `cargo test`, echoing its output, and sums its result lines.
fn cargo_test(cmd: &mut Command) -> Result<(u32, u32), (String, u32, u32)> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| (format!("cannot run cargo test: {e}"), 0, 1))?;
    let (mut passed, mut failed) = (0, 0);
    let stdout = child.stdout.take().expect("piped stdout");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        println!("{line}");
        if let Some((p, f)) = parse_result_line(&line) {
            passed += p;
            failed += f;
        }
    }
    match child.wait() {
        Ok(status) if status.success() => Ok((passed, failed)),
        Ok(status) => Err((status.to_string(), passed, failed)),
        Err(e) => Err((e.to_string(), passed, failed)),
    }
}

/// `test result: ok. 16 passed; 0 failed; ...` → (16, 0).
fn parse_result_line(line: &str) -> Option<(u32, u32)> {
    let rest = line.strip_prefix("test result: ")?;
    let count = |word: &str| -> Option<u32> {
        let part = rest.split(';').find(|p| p.trim().ends_with(word))?;
        part.split_whitespace().rev().nth(1)?.parse().ok()
    };
    Some((count(" passed")?, count(" failed")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cargo_test_summaries() {
        let ok = "test result: ok. 16 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s";
        assert_eq!(parse_result_line(ok), Some((16, 0)));
        let bad = "test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(parse_result_line(bad), Some((3, 1)));
        assert_eq!(parse_result_line("running 4 tests"), None);
    }

    #[test]
    fn the_checks_run_the_commands_they_name() {
        let args: Vec<String> = cargo_with(CHECKS[2].1)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args[..2], ["clippy", "--quiet"]);
        assert!(args.ends_with(&["-D".into(), "clippy::undocumented_unsafe_blocks".into()]));
        assert!(
            args.windows(2)
                .any(|w| w == ["--target", "x86_64-unknown-none"])
        );
    }
}
