// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask test`: what CI runs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::report::Report;
use crate::{cargo, kernel, prereq};
use anyhow::{Context as _, Result, anyhow};

const CLIPPY_DENY: &[&str] = &["-D", "warnings", "-D", "clippy::undocumented_unsafe_blocks"];

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
    report.stage("cargo fmt --check", || {
        run_ok(cargo().args(["fmt", "--all", "--", "--check"]))
    });
    report.stage("clippy (host, all targets and features)", || {
        run_ok(
            cargo()
                .args([
                    "clippy",
                    "--quiet",
                    "--workspace",
                    "--all-targets",
                    "--all-features",
                    "--",
                ])
                .args(CLIPPY_DENY),
        )
    });
    report.stage("clippy (x86_64-unknown-none, ffi)", || {
        run_ok(
            cargo()
                .args([
                    "clippy",
                    "--quiet",
                    "--lib",
                    "--features",
                    "ffi",
                    "--target",
                    "x86_64-unknown-none",
                ])
                .args(["--target-dir", "target/kobj", "--"])
                .args(CLIPPY_DENY),
        )
    });
    report.stage("rustdoc (no broken links, no missing docs)", || {
        run_ok(
            cargo()
                .args([
                    "doc",
                    "--quiet",
                    "--no-deps",
                    "--all-features",
                    "--package",
                    "gmem-kmap",
                ])
                .env("RUSTDOCFLAGS", "-D warnings"),
        )
    });
    // The host tests read kunit.py from the kernel tree, so the tree is
    // unpacked first.
    let opts = kernel::Options::default();
    kernel::test(&mut report, boot.then_some(&opts), |report| {
        report.counted("cargo test (host)", || {
            cargo_test(cargo().args(["test", "--no-fail-fast", "--workspace", "--all-features"]))
        });
    });
    report.finish()
}

/// `cargo xtask header`: rewrites the generated header.
pub fn bless_header() -> bool {
    run_ok(
        cargo()
            .args([
                "test",
                "--quiet",
                "--all-features",
                "--test",
                "c_header",
                "header_is_generated",
            ])
            .env("GMEM_KMAP_BLESS", "1"),
    )
    .map_err(|e| eprintln!("{e}"))
    .is_ok()
}

fn run_ok(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(anyhow!("{status}"))
    }
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
    let status = child.wait().map_err(|e| (e.to_string(), passed, failed))?;
    if status.success() {
        Ok((passed, failed))
    } else {
        Err((status.to_string(), passed, failed))
    }
}

/// `test result: ok. 16 passed; 0 failed; ...` → (16, 0).
fn parse_result_line(line: &str) -> Option<(u32, u32)> {
    let rest = line.strip_prefix("test result: ")?;
    let count = |word: &str| -> Option<u32> {
        rest.split(';').find_map(|part| {
            part.trim()
                .strip_suffix(word)?
                .trim()
                .rsplit(' ')
                .next()?
                .parse()
                .ok()
        })
    };
    Some((count(" passed")?, count(" failed")?))
}

#[cfg(test)]
mod tests {
    use super::parse_result_line;

    #[test]
    fn parses_cargo_test_summaries() {
        let ok = "test result: ok. 16 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s";
        assert_eq!(parse_result_line(ok), Some((16, 0)));
        let bad = "test result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(parse_result_line(bad), Some((3, 1)));
        assert_eq!(parse_result_line("running 4 tests"), None);
    }
}
