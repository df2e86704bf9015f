// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Project tasks: `cargo xtask <task>`; `cargo xtask --help` lists them,
//! `cargo xtask <task> --help` each one's options.

mod bench;
mod bench_core;
mod kernel;
mod prereq;
mod report;
mod test;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::OnceLock;

use clap::{Parser, Subcommand};

/// The project's tasks. A stage prints `==> stage` when it starts and
/// `<== stage: ok|FAILED: why|skipped: why|not run: needs X (time)` when it
/// ends; `test` ends with `N passed, N failed`. README.md says more.
#[derive(Parser, Debug)]
#[command(name = "xtask", bin_name = "cargo xtask", version)]
struct Cli {
    #[command(subcommand)]
    task: Task,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand, Debug)]
enum Task {
    /// Everything CI checks: fmt, clippy, rustdoc, the host tests, then the
    /// boot test's stages (see `boot-test`).
    Test {
        /// Skip the kernel's build and boots. The packages and the kernel
        /// tree are still made ready: the host tests read its kunit.py.
        #[arg(long)]
        host_only: bool,
    },
    /// Build Linux 6.12 with kernel-patch/ and boot it under QEMU (TCG): the
    /// series' round trip, checkpatch, the build and its Rust checks, boots
    /// at 5-level then 4-level paging judged on KUnit's and the selftests'
    /// results, the 8-CPU race stress, the debug kernel (KASAN, lockdep,
    /// kmemleak, fault injection), and the series built with mitigations off.
    BootTest(kernel::Options),
    /// Regenerate include/gmem_kmap_core.h with cbindgen.
    Header,
    /// The comparison: boot the patched kernel at 1, 2, 4 and 8 CPUs
    /// (4-level paging) and at 2 (5-level), run the window / re-insertion /
    /// direct map / floor microbenchmark, the MMIO exit rate and the
    /// population benchmark, and the host simulator sweep; print the table
    /// and write docs/results.md with its plots.
    Bench {
        /// Only the report, from the boot logs kept in benches/logs/.
        #[arg(long)]
        from_logs: bool,
    },
    /// Run the core's benchmarks and write docs/bench-core.md.
    BenchCore,
    /// Work on the kernel side as commits on a branch; export kernel-patch/.
    #[command(subcommand)]
    Series(kernel::SeriesTask),
}

/// What every task may be pointed elsewhere with, each with its
/// environment variable.
#[derive(Parser, Debug, Clone)]
pub struct Settings {
    /// The cache root: kernel tree, builds, ccache, logs, initramfs images.
    #[arg(long, global = true, env = "GMEM_KMAP_CACHE")]
    #[arg(default_value = "/var/cache/gmem-kmap")]
    pub cache: PathBuf,
    /// Patches to apply instead of kernel-patch/.
    #[arg(long, global = true, env = "GMEM_KMAP_SERIES_DIR")]
    pub series_dir: Option<PathBuf>,
    /// The worktree `series edit` makes [default: <cache>/edit].
    #[arg(long, global = true, env = "GMEM_KMAP_EDIT_TREE")]
    pub edit_tree: Option<PathBuf>,
    /// Another fragment for the boot kernel than kernel-patch/configs/boot.config.
    #[arg(long, global = true, env = "GMEM_KMAP_BOOT_CONFIG")]
    pub boot_config: Option<PathBuf>,
    /// Another fragment for the debug kernel's detectors.
    #[arg(long, global = true, env = "GMEM_KMAP_DEBUG_CONFIG")]
    pub debug_config: Option<PathBuf>,
    /// Another fragment for the build with mitigations off.
    #[arg(long, global = true, env = "GMEM_KMAP_NOMITIG_CONFIG")]
    pub nomitig_config: Option<PathBuf>,
    /// The suites a boot log must show, comma-separated, instead of the
    /// series' own (e.g. `list-kunit-test` for a kernel without the
    /// series; without `gmem_kmap` among them, a log that does not report
    /// its paging depth passes).
    #[arg(long, global = true, env = "GMEM_KMAP_EXPECTED_SUITES")]
    #[arg(value_delimiter = ',')]
    pub expected_suites: Option<Vec<String>>,
    /// Seconds before a boot's QEMU is killed.
    #[arg(long, global = true, env = "GMEM_KMAP_BOOT_TIMEOUT")]
    #[arg(default_value_t = 900)]
    pub timeout: u64,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// The settings of this run: the command line's, or (in host tests) the
/// environment's and the defaults.
pub fn settings() -> &'static Settings {
    SETTINGS.get_or_init(|| Settings::parse_from(["xtask"]))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    SETTINGS.set(cli.settings).expect("settings are set once");
    let passed = match cli.task {
        Task::Test { host_only } => test::run(!host_only),
        Task::BootTest(opts) => {
            let mut report = report::Report::default();
            kernel::test(&mut report, Some(&opts), |_| {});
            report.finish()
        }
        Task::Header => ok(test::bless_header()),
        Task::Bench { from_logs } => bench::run(from_logs),
        Task::BenchCore => ok(bench_core::measure()),
        Task::Series(task) => ok(kernel::series(task)),
    };
    // 0 when everything passed, 1 otherwise.
    ExitCode::from(u8::from(!passed))
}

/// Whether a one-step task passed; its error printed if not.
fn ok(done: anyhow::Result<()>) -> bool {
    done.map_err(|e| eprintln!("error: {e:#}")).is_ok()
}

/// The repository root (the xtask crate sits one level below it).
fn root() -> PathBuf {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().expect("xtask is in the repository").into()
}

/// `cargo`, as the one running this xtask.
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent_and_settings_go_before_or_after_the_task() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["xtask", "--timeout", "5", "test"]).unwrap();
        assert_eq!(cli.settings.timeout, 5);
        let cli = Cli::try_parse_from(["xtask", "bench", "--from-logs", "--cache", "/c"]).unwrap();
        assert_eq!(cli.settings.cache, PathBuf::from("/c"));
        assert!(matches!(cli.task, Task::Bench { from_logs: true }));
        let cli = Cli::try_parse_from(["xtask", "--expected-suites", "a,b", "test"]).unwrap();
        assert_eq!(cli.settings.expected_suites.unwrap(), ["a", "b"]);
        assert!(Cli::try_parse_from(["xtask", "bench", "--fast"]).is_err());
    }
}
