// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask bench`: the simulator sweep and the core's benchmarks on the host; the kernel
//! `cargo xtask test` builds, booted per [`BOOTS`] entry and once under QEMU's instruction clock,
//! its logs kept in [`LOGS`] for `--from-logs`. The report: docs/results.md, its tables, 3 plots.

mod parse;
mod plot;
mod tables;

use crate::bench_core::{self, output};
use crate::kernel::{self, Cache, Extra, Paging, Paging::Five, Paging::Four};
use crate::{prereq, report::Report, root};
use anyhow::{Context as _, Result, bail, ensure};
use parse::{Figures, HOWS, Sweep, WORKLOADS};
use std::path::Path;
use tables::describe;

/// The last run's boot logs and `machine.txt`, in the repository.
const LOGS: &str = "benches/logs";

/// Each CPU count at 4-level (of every table by CPU count, target and plot), then 5-level.
const BOOTS: [(u32, Paging); 5] = [(1, Four), (2, Four), (4, Four), (8, Four), (2, Five)];
/// The CPU count booted at both paging depths, to compare them.
const DEPTH_SMP: u32 = BOOTS[4].0;
/// The 4-level boots that run the population benchmark, as the issue asks.
const POPULATE_SMPS: [u32; 2] = [2, 8];
/// Operations per run, runs per figure, MMIO stores per end-to-end configuration: for the time.
const OPERATIONS: u32 = 4096;
const ROUNDS: u32 = 3;
const STORES: u32 = 5000;
/// The series' benchmark program (in the initramfs' `/bin`).
const PROGRAM: &str = "guest_memfd_no_direct_map_bench";
/// The counting kernel's boot configuration lacks, as Debian's: out-of-line `preempt_disable()`.
const COUNT_DISABLE: [&str; 1] = ["DEBUG_PREEMPT"];

fn runs_populate(smp: u32, paging: Paging) -> bool {
    paging == Four && POPULATE_SMPS.contains(&smp)
}

/// The whole comparison; with `from_logs`, the report from [`LOGS`] (and a new sweep).
pub fn run(from_logs: bool) -> bool {
    let mut report = Report::default();
    let cache = Cache::from_env();
    let (mut sweep, mut figures) = (Vec::new(), Figures::default());
    let what = "prerequisites (rustup target and components, cc, binutils)";
    report.stage(what, prereq::ensure);
    report.stage("host: simulator sweep, 1 to 256 CPUs (a model)", || {
        sweep = parse::sweep(&bench_core::cargo_bench("sim", "sim_sweep", &["--tsv"])?)?;
        println!("    {} rows", sweep.len());
        Ok(())
    });
    let mut built = None;
    if !from_logs {
        report.stage("host: the core's benchmarks (docs/bench-core.md)", || {
            prereq::apt_ensure(&["valgrind"])?;
            bench_core::measure()
        });
        built = kernel::build(&mut report, &cache, false);
        if built.is_none() {
            return report_results(report, &figures, &sweep, from_logs);
        }
    }
    // A boot's log, kept in LOGS: booted, or read back; each boot its own stage, failing alone.
    let kept = |name, smp, paging| {
        let log = kernel::script_log(&cache, name, smp, paging);
        root().join(LOGS).join(log.file_name().expect("a log file"))
    };
    let stage = |what: &str, name, smp, paging| match from_logs {
        true => format!("results of {}", kept(name, smp, paging).display()),
        false => what.to_string(),
    };
    let log = |name, smp, paging, script: &str, extra| match &built {
        Some(b) => {
            let text = kernel::boot_script(&cache, b, (smp, paging), name, script, extra)?;
            write(kept(name, smp, paging), &text).map(|()| text)
        }
        None => read(&kept(name, smp, paging)),
    };
    let run = format!("#!/bin/sh\n/bin/{PROGRAM} -m {OPERATIONS} -r {ROUNDS}");
    for (smp, paging) in BOOTS {
        // Each of the population benchmark's rounds populates 256 MiB and faults in 64.
        let pop = runs_populate(smp, paging).then_some("/bin/guest_memfd_populate_bench -r 3\n");
        let script = format!("{run} -b {STORES}\n{}", pop.unwrap_or_default());
        let what = format!("kernel: benchmark boot, {smp} CPU(s), {paging} paging");
        report.stage(&stage(&what, "bench", smp, paging), || {
            let log = log("bench", smp, paging, &script, Extra::default())?;
            println!("    {} figures", figures.add(smp, paging, &log)?);
            Ok(())
        });
    }
    let mut counted = None;
    if let Some(built) = &built {
        let off = COUNT_DISABLE.join(", ");
        let what = format!("kernel: build count (boot config without {off})");
        report.stage(&what, || {
            let kernel = kernel::build_variant(&cache, built, "count", &COUNT_DISABLE)?;
            counted = Some(kernel);
            Ok(())
        });
    }
    // The instruction clock; of KUnit only `gmem_kmap`, which reports the paging depth (under
    // this clock's timing `ndm_test_reuse_after_free` does not see the allocator reuse pages).
    let extra = Extra {
        qemu: &["-icount", "shift=0,sleep=off"],
        cmdline: "kunit.filter_glob=gmem_kmap",
        kernel: counted.as_deref(),
        ..Extra::default()
    };
    let what = "kernel: instruction-count boot, 1 CPU, 4-level paging, QEMU -icount shift=0";
    report.stage(&stage(what, "bench-icount", 1, Four), || {
        ensure!(from_logs || counted.is_some(), "no counting kernel");
        let log = log("bench-icount", 1, Four, &(run + "\n"), extra)?;
        figures.count = parse::group(&parse::COUNT, &log)?;
        println!("    {} instruction counts", figures.count.len());
        Ok(())
    });
    report_results(report, &figures, &sweep, from_logs)
}

fn report_results(mut report: Report, f: &Figures, sweep: &[Sweep], from_logs: bool) -> bool {
    report.stage("results: table, docs/results.md, plots", || {
        let measured = !f.boots.is_empty() && !sweep.is_empty();
        ensure!(measured, "nothing measured to report");
        let doc = document(f, sweep, &machine(from_logs)?)?;
        // The page's headings and tables.
        let shown = |l: &&str| l.starts_with(['#', '|']) || l.starts_with("No figures");
        doc.lines().filter(shown).for_each(|l| println!("    {l}"));
        write("docs/results.md", &doc)?;
        write("docs/results-micro.svg", &micro_plot(f))?;
        write("docs/results-model.svg", &model_plot(sweep))?;
        ensure!(tables::mib(f, "fallocate") > 0.0, "no population figures");
        write("docs/results-populate.svg", &populate_plot(f))
    });
    report.finish()
}

/// Writes `text` to `path` in the repository, and says so.
pub(crate) fn write(path: impl AsRef<Path>, text: &str) -> Result<()> {
    let path = root().join(path);
    std::fs::create_dir_all(path.parent().expect("a file in a directory"))?;
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    println!("    wrote {}", path.display());
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))
}

/// The page's Machine section: `LOGS/machine.txt`, written first unless `from_logs`.
fn machine(from_logs: bool) -> Result<Vec<(String, String)>> {
    let kept = root().join(LOGS).join("machine.txt");
    if !from_logs {
        let qemu = output("qemu-system-x86_64", &["--version"]);
        let mut machine = bench_core::host();
        machine.push((
            "qemu_version",
            qemu.lines().next().unwrap_or_default().into(),
        ));
        let text: String = machine.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        write(&kept, &text)?;
    }
    machine_of(&read(&kept)?)
}

/// `key=value` lines as pairs.
fn machine_of(text: &str) -> Result<Vec<(String, String)>> {
    let pair = |l: &str| l.split_once('=').map(|(k, v)| (k.into(), v.into()));
    text.lines()
        .map(|l| pair(l).context("not key=value"))
        .collect()
}

/// The results page, a `{{name}}` for each figure: built in, one version with its code.
const TEMPLATE: &str = include_str!("../../../benches/results.md.in");

/// docs/results.md: [`TEMPLATE`] filled with the figures.
fn document(f: &Figures, sweep: &[Sweep], machine: &[(String, String)]) -> Result<String> {
    let mut values = machine.to_vec();
    values.extend(tables::MODEL.map(|(k, v)| (k.into(), v.to_string())));
    for touch in parse::TOUCHES {
        for cpus in parse::CPU_SETS {
            let name = format!("micro_{touch}_{cpus}");
            values.push((format!("{name}_depth"), tables::micro_depth(f, touch, cpus)));
            values.push((name, tables::micro(f, touch, cpus)));
        }
    }
    for w in WORKLOADS {
        values.push((format!("{w}_mib"), tables::mib(f, w).to_string()));
        values.push((format!("populate_{w}"), tables::population(f, w)));
    }
    let named = [
        ("boots_4level", cpu_counts(Four)),
        ("boots_5level", cpu_counts(Five)),
        ("depth_smp", DEPTH_SMP.to_string()),
        ("program", PROGRAM.into()),
        ("operations", OPERATIONS.to_string()),
        ("rounds", ROUNDS.to_string()),
        ("stores", STORES.to_string()),
        ("targets", tables::targets(f)),
        ("instructions", tables::instructions(f)),
        ("exits", tables::exits(f)),
        ("exits_depth", tables::exits_depth(f)),
        ("populate_targets", tables::population_targets(f)),
        ("sweep", tables::sweep(sweep)),
    ];
    values.extend(named.map(|(k, v)| (k.into(), v)));
    fill(TEMPLATE, &values)
}

/// `template` with each `{{name}}` replaced by its value less trailing newlines. A placeholder
/// without a value, a value without a placeholder and a name given twice are errors (bugs).
pub(crate) fn fill(
    template: &str,
    values: &[(impl AsRef<str>, impl AsRef<str>)],
) -> Result<String> {
    let mut out = template.to_string();
    for (i, (name, value)) in values.iter().enumerate() {
        let name = name.as_ref();
        let twice = values[..i].iter().any(|v| v.0.as_ref() == name);
        ensure!(!twice, "the value `{name}` is given twice");
        let placeholder = format!("{{{{{name}}}}}");
        let used = out.contains(&placeholder);
        ensure!(used, "the template does not use `{name}`");
        out = out.replace(&placeholder, value.as_ref().trim_end_matches('\n'));
    }
    if let Some(at) = out.find("{{") {
        let rest = out[at..].lines().next().unwrap_or_default();
        bail!("no value for the template's `{rest}`");
    }
    Ok(out)
}

/// The plot of the 4-level figures by CPU count: all CPUs at once, read64.
fn micro_plot(f: &Figures) -> String {
    let line = |how| {
        let ns = |s| Some((s, f.ns(Four, s, how, "read64", "all")?));
        let points = f.smps(Four).into_iter().filter_map(ns).collect();
        (describe(how).into(), points)
    };
    let title = "map + read 64 bytes + unmap, every CPU at once (QEMU TCG, 4-level paging, median)";
    plot::svg(title, "ns per operation (TCG)", HOWS.map(line))
}

fn model_plot(sweep: &[Sweep]) -> String {
    let line = |s| {
        let points = sweep.iter().filter(|r| r.0 == s).map(|r| (r.1, r.2[5]));
        (format!("{} (model)", describe(s)), points.collect())
    };
    let title =
        "modelled cost per access to the accessing CPU (simulator counts × published costs)";
    plot::svg(title, "ns (model)", ["window", "reinsert"].map(line))
}

fn populate_plot(f: &Figures) -> String {
    let line = |(w, c)| {
        let ratio = |s| Some((s, tables::pop_ratio(f, s, w, c)?));
        let points = POPULATE_SMPS.into_iter().filter_map(ratio).collect();
        (format!("{w}, {c}"), points)
    };
    let lines = WORKLOADS.map(|w| ["pool", "page"].map(|c| (w, c))).concat();
    let title = "population with the flag, time ÷ flag off (QEMU TCG, 4-level paging, median)";
    plot::svg(title, "time ÷ flag off", lines.into_iter().map(line))
}

/// The CPU counts booted at `paging`: `1, 2, 4 and 8`.
fn cpu_counts(paging: Paging) -> String {
    let smps = BOOTS.iter().filter(|b| b.1 == paging);
    let smps = smps.map(|b| b.0.to_string()).collect::<Vec<_>>().join(", ");
    let and = |(rest, last)| format!("{rest} and {last}");
    smps.rsplit_once(", ").map_or(smps.clone(), and)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parse::tests::fixture;

    /// fixtures/results.md is the page the code before the generic reader
    /// and renderer made of the fixture logs, with blank machine fields.
    #[test]
    fn the_fixture_logs_give_the_fixture_page() {
        let mut f = Figures::default();
        for (smp, paging) in BOOTS {
            let log = fixture(&format!("bench-smp{smp}-{}.log", paging.tag()));
            assert!(f.add(smp, paging, &log).unwrap() > 0);
        }
        f.count = parse::group(&parse::COUNT, &fixture("bench-icount-smp1-4level.log")).unwrap();
        let sweep = parse::sweep(&fixture("sweep.tsv")).unwrap();
        let machine = machine_of("host_cpu=\nhost_kernel=\nqemu_version=\nwritten=\nhost_cpus=0");
        let page = document(&f, &sweep, &machine.unwrap()).unwrap();
        let expected = fixture("results.md");
        for (n, (a, b)) in page.lines().zip(expected.lines()).enumerate() {
            assert_eq!(a, b, "line {}", n + 1);
        }
        assert_eq!(page, expected);
        assert!(!page.contains("../"), "a path outside the repository");
        assert!(HOWS.iter().all(|how| describe(how) != "?"));
    }

    #[test]
    fn the_template_and_its_values_must_agree() {
        let t = "| a |\n{{table}}\n\n{{n}} CPUs, {{n}} again\n";
        let ok = fill(t, &[("table", "| 1 |\n| 2 |\n"), ("n", "4")]).unwrap();
        assert_eq!(ok, "| a |\n| 1 |\n| 2 |\n\n4 CPUs, 4 again\n");
        let error = |t, values: &[(&str, &str)]| fill(t, values).unwrap_err().to_string();
        let e = error("{{a}} and {{b}}", &[("a", "1")]);
        assert_eq!(e, "no value for the template's `{{b}}`");
        let e = error("{{a}}", &[("a", "1"), ("b", "2")]);
        assert_eq!(e, "the template does not use `b`");
        let e = error("{{a}}", &[("a", "1"), ("a", "2")]);
        assert_eq!(e, "the value `a` is given twice");
        let e = error("x {{a} y\n", &[]);
        assert_eq!(e, "no value for the template's `{{a} y`");
    }
}
