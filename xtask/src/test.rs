// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask test`, what CI runs: the cargo commands of [`CHECKS`], then
//! the kernel stages with the host tests among them.

use std::process::Command;

use anyhow::{Context as _, Result, ensure};

use crate::report::Report;
use crate::{cargo, kernel, prereq};

const CLIPPY: &str = "clippy --quiet";
const DENY: &str = "-- -D warnings -D clippy::undocumented_unsafe_blocks";
const KOBJ: &str = "--target x86_64-unknown-none --target-dir target/kobj";
const DOC: &str = "doc --quiet --no-deps --all-features --package gmem-kmap";

/// The checks before the host tests: `cargo` with these arguments.
const CHECKS: &[&[&str]] = &[
    &["fmt --all -- --check"],
    &[CLIPPY, "--workspace --all-targets --all-features", DENY],
    &[CLIPPY, "--lib --features ffi", KOBJ, DENY],
    &[DOC, r#"--config build.rustdocflags=["-D","warnings"]"#],
];

/// Runs every check, the boot test's stages last unless `boot` is false; true when all passed.
pub fn run(boot: bool) -> bool {
    let mut report = Report::default();
    let prerequisites = "prerequisites (rustup target and components, cc, binutils)";
    report.stage(prerequisites, prereq::ensure);
    if report.failed > 0 {
        return report.finish();
    }
    CHECKS.iter().for_each(|args| check(&mut report, args));
    // The boot test with the defaults of its command line.
    let opts: kernel::Options = clap::Parser::parse_from(["boot-test"]);
    let host_tests = |r: &mut Report| check(r, &["test --no-fail-fast --workspace --all-features"]);
    kernel::test(&mut report, boot.then_some(&opts), host_tests);
    report.finish()
}

/// Runs `cargo <args>` (split at spaces) as the stage of that name.
fn check(report: &mut Report, args: &[&str]) {
    let args: Vec<_> = args.iter().flat_map(|a| a.split_whitespace()).collect();
    // The environment's RUSTDOCFLAGS would outrank the doc check's `build.rustdocflags`.
    let run = || run_ok(cargo().args(&args).env_remove("RUSTDOCFLAGS"));
    report.stage(&format!("cargo {}", args.join(" ")), run);
}

/// `cargo xtask header`: rewrites the generated header.
pub fn bless_header() -> Result<()> {
    let args = "test --quiet --all-features --test c_header header_is_generated".split(' ');
    run_ok(cargo().args(args).env("GMEM_KMAP_BLESS", "1"))
}

/// Runs `cmd`: Ok when it exits successfully.
fn run_ok(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().context(format!("cannot run {cmd:?}"))?;
    ensure!(status.success(), "{status}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_check_fails_the_run_when_its_command_fails() {
        let mut report = crate::report::Report::default();
        super::check(&mut report, &["--version"]);
        super::check(&mut report, &["no-such-subcommand"]);
        let missing = || super::run_ok(&mut std::process::Command::new("/nonexistent"));
        report.stage("a missing program", missing);
        assert_eq!((report.passed, report.failed), (1, 2));
        assert!(!report.finish());
    }
}
