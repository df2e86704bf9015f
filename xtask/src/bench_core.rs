// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask bench-core`: runs the core's benchmarks here and writes what they printed to
//! docs/bench-core.md, with the machine and the method (benches/bench-core.md.in).

use std::process::Command;

use crate::cargo;
use anyhow::Result;

/// Runs both benches and writes docs/bench-core.md.
pub fn measure() -> Result<()> {
    let bench = |name| cargo_bench("ffi", name, &[]).inspect(|out| print!("{out}"));
    println!("==> instruction counts (valgrind, 96 runs; about a minute)");
    let instructions = bench("instructions")?;
    println!("==> wall time (divan)");
    let timing = bench("map_unmap")?;
    let mut values = host();
    values.extend([
        ("rustc", output("rustc", &["-V"])),
        ("valgrind", output("valgrind", &["--version"])),
        ("instructions", instructions),
        ("timing", timing),
    ]);
    let doc = crate::bench::fill(include_str!("../../benches/bench-core.md.in"), &values)?;
    crate::bench::write("docs/bench-core.md", &doc)
}

/// This machine, for both benchmark pages' Machine sections.
pub fn host() -> Vec<(&'static str, String)> {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'));
    vec![
        ("host_cpu", model.map_or("unknown", |m| m.1.trim()).into()),
        ("host_cpus", cpus.to_string()),
        ("host_kernel", output("uname", &["-sr"])),
        ("written", output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])),
    ]
}

/// `cargo bench --features <feature> --bench <name> -- <args>`: its output.
pub fn cargo_bench(feature: &str, name: &str, args: &[&str]) -> Result<String> {
    let bench = format!("bench --quiet --features {feature} --bench {name} --");
    crate::kernel::run::output(cargo().args(bench.split(' ')).args(args))
}

/// What `cmd args` printed, trimmed, or that it is unavailable.
pub fn output(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output();
    let out = out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    out.ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("({cmd} unavailable)"))
}
