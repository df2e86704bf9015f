// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Project tasks: `cargo xtask <task>`.

mod bench;
mod bench_core;
mod kernel;
mod prereq;
mod report;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  test         everything CI checks: fmt, clippy, host tests, then the
               boot-test stages (the series' round trip, checkpatch, the
               kernel build with its check of the Rust object, the boots at
               5-level and at 4-level paging); ends with `N passed, N failed`
               [--host-only: skip the boot test]
  header       regenerate include/gmem_kmap_core.h with cbindgen
  bench        the comparison: builds and boots the patched kernel at 1, 2, 4
               and 8 CPUs with 4-level paging and at 2 CPUs with 5-level,
               runs the window / re-insertion / direct map / raw floor
               microbenchmark and the end-to-end exit rate, and the host
               simulator sweep; prints the table, writes docs/results.md
               [--from-logs: only the report, from the last run's boot logs]
  bench-core   run the core's benchmarks and write docs/bench-core.md
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ok = match args.first().map(String::as_str) {
        Some("test") => match args[1..] {
            [] => test::run(true),
            [ref a] if a == "--host-only" => test::run(false),
            _ => return usage(),
        },
        Some("boot-test") => match kernel::Options::parse(&args[1..]) {
            Ok(opts) => {
                let mut report = report::Report::default();
                kernel::boot_test(&mut report, &opts);
                report.finish()
            }
            Err(e) => {
                eprintln!("boot-test: {e}");
                return usage();
            }
        },
        Some("header") => test::bless_header(),
        Some("bench") => match args[1..] {
            [] => bench::run(false),
            [ref a] if a == "--from-logs" => bench::run(true),
            _ => return usage(),
        },
        Some("bench-core") => bench_core::run(),
        Some("series") => match kernel::series(&args[1..]) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("series: {e}");
                false
            }
        },
        _ => return usage(),
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}{}\n{}", kernel::USAGE, kernel::SERIES_USAGE);
    ExitCode::from(2)
}

/// The repository root (the xtask crate sits one level below it).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the repository")
        .to_path_buf()
}

/// `cargo`, as the one running this xtask.
fn cargo() -> std::process::Command {
    let mut cmd =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}
