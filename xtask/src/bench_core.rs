// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask bench-core`: runs the core's benchmarks on this machine and
//! writes what they printed to docs/bench-core.md, with the machine and the
//! method (benches/bench-core.md.in).

use std::process::Command;

use crate::{cargo, root};
use anyhow::{Context as _, Result, bail};

pub fn run() -> bool {
    let done = measure().map(|path| println!("wrote {path}"));
    done.map_err(|e| eprintln!("bench-core: {e}")).is_ok()
}

/// Runs both benches and writes docs/bench-core.md; returns its path.
pub fn measure() -> Result<String> {
    println!("==> instruction counts (valgrind, 96 runs; about a minute)");
    let instructions = bench("instructions")?;
    println!("==> wall time (divan)");
    let timing = bench("map_unmap")?;
    let values = [
        ("written", output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])),
        ("cpu", cpu_model()),
        ("cpus", output("nproc", &[])),
        ("kernel", output("uname", &["-sr"])),
        ("rustc", output("rustc", &["-V"])),
        ("valgrind", output("valgrind", &["--version"])),
        ("instructions", instructions),
        ("timing", timing),
    ];
    let doc = crate::bench::fill(include_str!("../../benches/bench-core.md.in"), &values)?;
    let path = root().join("docs/bench-core.md");
    std::fs::write(&path, doc).with_context(|| format!("write {}", path.display()))?;
    Ok(path.display().to_string())
}

fn bench(name: &str) -> Result<String> {
    let stdout = cargo_bench("ffi", name, &[])?;
    print!("{stdout}");
    Ok(stdout)
}

/// `cargo bench --features <feature> --bench <name> -- <args>`: its output.
pub fn cargo_bench(feature: &str, name: &str, args: &[&str]) -> Result<String> {
    let out = cargo()
        .args([
            "bench",
            "--quiet",
            "--features",
            feature,
            "--bench",
            name,
            "--",
        ])
        .args(args)
        .output()
        .context("cannot run cargo bench")?;
    if !out.status.success() {
        bail!(
            "bench {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What `cmd args` printed, trimmed, or that it is unavailable.
pub fn output(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("({cmd} unavailable)"))
}

/// The host CPU's model name, from /proc/cpuinfo.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, m)| m.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into())
}
