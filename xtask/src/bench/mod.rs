// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask bench`: the comparison this project exists for.
//!
//! 1. host: the simulator sweep (counts per access from 1 to 256 CPUs,
//!    priced with published per-event costs: a model) and the core's own
//!    benchmarks (`bench-core`, docs/bench-core.md);
//! 2. the patched kernel, built as `cargo xtask test` builds it (same cache,
//!    same configuration, so one build serves both);
//! 3. a boot for each of [`BOOTS`] running the series' benchmark program
//!    ([`PROGRAM`]): the kernel's microbenchmark (window, re-insertion,
//!    plain direct map and the raw floor, one CPU looping and all at once)
//!    and the end-to-end exit rate of a guest whose MMIO stores KVM fetches
//!    from a private page. Every CPU count boots at 4-level paging
//!    (`no5lvl`), and [`DEPTH_SMP`] CPUs once more at 5-level (LA57 from
//!    `-cpu max`); each log must report the depth its boot asked for, and
//!    is kept as `<cache>/logs/bench-smp<N>-<4|5>level.log`;
//!    The 4-level boots at [`populate::SMPS`] CPUs also run the population
//!    benchmark ([`POPULATE_PROGRAM`]): populating files without the flag,
//!    with the block pool and on the single-page path;
//! 4. the table on the terminal, docs/results.md (the prose of
//!    benches/results.md.in, its placeholders filled in) and the plots
//!    docs/results-micro.svg, docs/results-model.svg and
//!    docs/results-populate.svg, all by CPU count at 4-level, with the two
//!    depths side by side at [`DEPTH_SMP`] CPUs.

mod instructions;
mod parse;
mod plot;
mod populate;
mod results;
mod template;

use std::fmt::Write as _;
use std::path::Path;

use crate::kernel::{self, Cache, Extra, Paging};
use crate::report::Report;
use crate::root;
use anyhow::{Context as _, Result, bail};
use parse::{Exits, HOWS, Micro, Sweep};
use results::describe;

/// The CPU count booted at both paging depths, to compare them.
const DEPTH_SMP: u32 = 2;
/// The boots, (CPUs, paging depth): each CPU count at 4-level, the depth
/// every table by CPU count, target and plot uses, then [`DEPTH_SMP`] CPUs
/// at 5-level.
const BOOTS: [(u32, Paging); 5] = [
    (1, Paging::Four),
    (2, Paging::Four),
    (4, Paging::Four),
    (8, Paging::Four),
    (DEPTH_SMP, Paging::Five),
];
/// The boots' name: their logs are [`kernel::script_log`]s of it.
const BOOT_NAME: &str = "bench";
/// Operations per microbenchmark run, runs per figure, MMIO stores per
/// end-to-end configuration. Chosen for the run time under TCG, not for any
/// result: with 8 guest CPUs on a 2-core host, re-insertion with every CPU
/// looping takes milliseconds per operation.
const OPERATIONS: u32 = 4096;
const ROUNDS: u32 = 3;
const STORES: u32 = 5000;
/// The series' benchmark program (a tool of [`crate::kernel`]'s selftests,
/// in the initramfs' `/bin`).
const PROGRAM: &str = "guest_memfd_no_direct_map_bench";
/// The population benchmark (a tool too), and its rounds per configuration:
/// each round populates 256 MiB and faults in 64 MiB, three ways.
const POPULATE_PROGRAM: &str = "guest_memfd_populate_bench";
const POPULATE_ROUNDS: u32 = 3;

/// Whether the boot on `smp` CPUs at `paging` runs the population benchmark.
fn runs_populate(smp: u32, paging: Paging) -> bool {
    paging == Paging::Four && populate::SMPS.contains(&smp)
}

/// What the benchmark boots measured, every figure tagged with the paging
/// depth of its boot.
#[derive(Default)]
struct Figures {
    micro: Vec<Micro>,
    exits: Vec<Exits>,
    populate: Vec<populate::Populate>,
    /// The counting boot's instructions per operation.
    insns: Vec<instructions::Count>,
}

impl Figures {
    /// Adds one boot's figures, as [`parse::boot`] gives them.
    fn add(&mut self, (micro, exits): (Vec<Micro>, Vec<Exits>)) {
        self.micro.extend(micro);
        self.exits.extend(exits);
    }

    /// Adds the population figures of a boot that ran them.
    fn add_populate(&mut self, smp: u32, paging: Paging, log: &str) -> Result<usize> {
        if !runs_populate(smp, paging) {
            return Ok(0);
        }
        let p = populate::parse(smp, log)?;
        let n = p.len();
        self.populate.extend(p);
        Ok(n)
    }

    /// The figures of the boots at `paging` only: a table by CPU count
    /// holds one depth, so that its rows differ by the CPU count alone.
    fn at(&self, paging: Paging) -> Figures {
        Figures {
            micro: self
                .micro
                .iter()
                .filter(|m| m.paging == paging)
                .cloned()
                .collect(),
            exits: self
                .exits
                .iter()
                .filter(|e| e.paging == paging)
                .cloned()
                .collect(),
            populate: if paging == Paging::Four {
                self.populate.clone()
            } else {
                Vec::new()
            },
            insns: if paging == Paging::Four {
                self.insns.clone()
            } else {
                Vec::new()
            },
        }
    }
}

/// The whole comparison; with `from_logs`, only the report, from the boot
/// logs the last run left in the cache (and a new simulator sweep).
pub fn run(from_logs: bool) -> bool {
    let mut report = Report::default();
    let cache = Cache::from_env();
    let mut sweep = Vec::new();
    report.stage(
        "prerequisites (rustup target and components, cc, binutils)",
        crate::prereq::ensure,
    );
    report.stage("host: simulator sweep, 1 to 256 CPUs (a model)", || {
        sweep = run_sweep()?;
        Ok(())
    });
    let mut figures = Figures::default();
    if from_logs {
        for (smp, paging) in BOOTS {
            let log = kernel::script_log(&cache, BOOT_NAME, smp, paging);
            report.stage(&format!("results of {}", log.display()), || {
                let text = std::fs::read_to_string(&log)
                    .with_context(|| format!("read {}", log.display()))?;
                figures.add(parse::boot(smp, paging, &text)?);
                figures.add_populate(smp, paging, &text)?;
                Ok(())
            });
        }
        let log = kernel::script_log(&cache, instructions::NAME, instructions::SMP, Paging::Four);
        report.stage(&format!("results of {}", log.display()), || {
            let text =
                std::fs::read_to_string(&log).with_context(|| format!("read {}", log.display()))?;
            figures.insns = instructions::parse(&text)?;
            Ok(())
        });
        return report_results(report, &figures, &sweep);
    }
    report.stage("host: the core's benchmarks (docs/bench-core.md)", || {
        if !crate::prereq::has_command("valgrind") {
            crate::prereq::apt_install(&["valgrind"])?;
        }
        crate::bench_core::measure().map(drop)
    });
    if let Some(built) = kernel::build(&mut report, &cache, false) {
        // Each boot is a stage of its own: one failing leaves the others.
        for (smp, paging) in BOOTS {
            let stage = format!("kernel: benchmark boot, {smp} CPU(s), {paging} paging");
            report.stage(&stage, || {
                let mut script =
                    format!("#!/bin/sh\n/bin/{PROGRAM} -m {OPERATIONS} -r {ROUNDS} -b {STORES}\n");
                if runs_populate(smp, paging) {
                    writeln!(script, "/bin/{POPULATE_PROGRAM} -r {POPULATE_ROUNDS}").unwrap();
                }
                let log = kernel::boot_script(
                    &cache,
                    &built,
                    smp,
                    paging,
                    BOOT_NAME,
                    &script,
                    Extra::default(),
                )?;
                let (m, e) = parse::boot(smp, paging, &log)?;
                let p = figures.add_populate(smp, paging, &log)?;
                println!(
                    "    {} microbenchmark figures, {} end-to-end, {p} population",
                    m.len(),
                    e.len()
                );
                figures.add((m, e));
                Ok(())
            });
        }
        let mut counted = None;
        report.stage(
            &format!(
                "kernel: build {} (boot config without {})",
                instructions::BUILD,
                instructions::DISABLE.join(", ")
            ),
            || {
                counted = Some(kernel::build_variant(
                    &cache,
                    &built,
                    instructions::BUILD,
                    &instructions::DISABLE,
                )?);
                Ok(())
            },
        );
        let stage = format!(
            "kernel: instruction-count boot, {} CPU, 4-level paging, QEMU -icount shift=0",
            instructions::SMP
        );
        report.stage(&stage, || {
            let kernel = counted
                .as_deref()
                .context("the counting kernel was not built")?;
            let script = format!("#!/bin/sh\n/bin/{PROGRAM} -m {OPERATIONS} -r {ROUNDS}\n");
            let log = kernel::boot_script(
                &cache,
                &built,
                instructions::SMP,
                Paging::Four,
                instructions::NAME,
                &script,
                instructions::extra(kernel),
            )?;
            figures.insns = instructions::parse(&log)?;
            println!("    {} instruction counts", figures.insns.len());
            Ok(())
        });
    }
    report_results(report, &figures, &sweep)
}

fn report_results(mut report: Report, figures: &Figures, sweep: &[Sweep]) -> bool {
    report.stage("results: table, docs/results.md, plots", || {
        if figures.micro.is_empty() || sweep.is_empty() {
            bail!("nothing measured to report");
        }
        let doc = document(figures, sweep, &machine())?;
        print_summary(figures);
        let four = figures.at(Paging::Four);
        write(&root().join("docs/results.md"), &doc)?;
        write(
            &root().join("docs/results-micro.svg"),
            &micro_plot(&four.micro),
        )?;
        write(&root().join("docs/results-model.svg"), &model_plot(sweep))?;
        if figures.populate.is_empty() {
            bail!("no population figures");
        }
        write(
            &root().join("docs/results-populate.svg"),
            &populate::plot(&figures.populate),
        )
    });
    report.finish()
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
    println!("    wrote {}", path.display());
    Ok(())
}

fn run_sweep() -> Result<Vec<Sweep>> {
    let tsv = crate::bench_core::cargo_bench("sim", "sim_sweep", &["--tsv"])?;
    let rows = parse::sweep(&tsv)?;
    println!("    {} rows", rows.len());
    Ok(rows)
}

/// The read64 and end-to-end tables of the 4-level boots, each followed
/// by its depth table, and the targets.
fn print_summary(figures: &Figures) {
    let (four, five) = (figures.at(Paging::Four), figures.at(Paging::Five));
    let print = |table: String| {
        for line in table.lines() {
            println!("    {line}");
        }
    };
    for (touch, cpus, what) in [
        ("read64", "one", "read 64 bytes, one CPU looping"),
        ("read64", "all", "read 64 bytes, every CPU at once"),
    ] {
        println!(
            "\n    map, {what}, unmap: ns per operation, 4-level paging (QEMU TCG: compare ratios, not times)"
        );
        print(results::micro_table(&four.micro, touch, cpus));
        println!("\n    paging depth at {DEPTH_SMP} CPUs");
        print(results::micro_depth_table(
            &four.micro,
            &five.micro,
            DEPTH_SMP,
            touch,
            cpus,
        ));
    }
    println!("\n    end to end: MMIO exits per second, code in a private page, 4-level paging");
    print(results::exits_table(&four.exits));
    println!("\n    paging depth at {DEPTH_SMP} CPUs");
    print(results::exits_depth_table(
        &four.exits,
        &five.exits,
        DEPTH_SMP,
    ));
    println!(
        "\n    instructions per map + touch + unmap, counted (QEMU -icount shift=0), and a model"
    );
    print(instructions::table(&four.insns));
    println!("\n    targets (4-level paging)");
    print(results::targets_table(&all_targets(&four)));
    for w in populate::WORKLOADS {
        println!("\n    population: {w}, 4-level paging (QEMU TCG: compare ratios, not times)");
        print(populate::table(&four.populate, w));
    }
    println!("\n    population targets (the pool)");
    print(populate::targets(&four.populate));
    println!();
}

/// Where the figures were made, for the page's Machine section.
#[derive(Default)]
struct Machine {
    cpu: String,
    cores: usize,
    kernel: String,
    qemu: String,
    written: String,
}

fn machine() -> Machine {
    let sh = |c: &str| {
        std::process::Command::new("sh")
            .args(["-c", c])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    Machine {
        cpu: crate::bench_core::cpu_model(),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel: sh("uname -sr"),
        qemu: sh("qemu-system-x86_64 --version | head -1"),
        written: sh("date -u '+%Y-%m-%d %H:%M UTC'"),
    }
}

/// The targets on the TCG timings and on the instruction counts.
fn all_targets(four: &Figures) -> Vec<results::Target> {
    let mut t = results::targets(&four.micro);
    t.extend(instructions::targets(&four.insns));
    t
}

/// The results page's prose, with a `{{name}}` for each figure and table
/// [`document`] fills in. Built into the binary rather than read at run
/// time: the text and the code that fills it are then always one version
/// (cargo rebuilds xtask when the file changes), and the unit tests check
/// the very template `cargo xtask bench` renders, without a file to find.
const TEMPLATE: &str = include_str!("../../../benches/results.md.in");

/// docs/results.md: [`TEMPLATE`] filled with the figures.
fn document(figures: &Figures, sweep: &[Sweep], machine: &Machine) -> Result<String> {
    let (four, five) = (figures.at(Paging::Four), figures.at(Paging::Five));
    let micro = |touch, cpus| results::micro_table(&four.micro, touch, cpus);
    let depth =
        |touch, cpus| results::micro_depth_table(&four.micro, &five.micro, DEPTH_SMP, touch, cpus);
    let strategies: String = HOWS
        .iter()
        .map(|how| format!("- `{how}`: {}\n", describe(how)))
        .collect();
    let mib = |w| populate::mib(&four.populate, w).to_string();
    let population = |w| populate::table(&four.populate, w);
    let mut values = vec![
        ("host_cpu", machine.cpu.clone()),
        ("host_cpus", machine.cores.to_string()),
        ("host_kernel", machine.kernel.clone()),
        ("qemu_version", machine.qemu.clone()),
        ("written", machine.written.clone()),
        ("boots_4level", cpu_counts(Paging::Four)),
        ("boots_5level", cpu_counts(Paging::Five)),
        ("depth_smp", DEPTH_SMP.to_string()),
        ("program", PROGRAM.into()),
        ("operations", OPERATIONS.to_string()),
        ("rounds", ROUNDS.to_string()),
        ("stores", STORES.to_string()),
        ("strategies", strategies),
        ("targets", results::targets_table(&all_targets(&four))),
        ("instructions", instructions::table(&four.insns)),
        ("micro_read64_one", micro("read64", "one")),
        ("micro_read64_one_depth", depth("read64", "one")),
        ("micro_read64_all", micro("read64", "all")),
        ("micro_read64_all_depth", depth("read64", "all")),
        ("micro_copy4k_one", micro("copy4k", "one")),
        ("micro_copy4k_one_depth", depth("copy4k", "one")),
        ("micro_copy4k_all", micro("copy4k", "all")),
        ("micro_copy4k_all_depth", depth("copy4k", "all")),
        ("exits", results::exits_table(&four.exits)),
        (
            "exits_depth",
            results::exits_depth_table(&four.exits, &five.exits, DEPTH_SMP),
        ),
        ("fallocate_mib", mib("fallocate")),
        ("touch_mib", mib("touch")),
        ("populate_fallocate", population("fallocate")),
        ("populate_touch", population("touch")),
        ("populate_targets", populate::targets(&four.populate)),
        ("sweep", results::sweep_table(sweep)),
    ];
    values.extend(instructions::model_values());
    template::fill(TEMPLATE, &values)
}

/// The plot of the `micro` figures by CPU count: give it one depth's.
fn micro_plot(micro: &[Micro]) -> String {
    let series: Vec<plot::Series> = HOWS
        .iter()
        .map(|how| plot::Series {
            name: describe(how).into(),
            points: micro
                .iter()
                .filter(|m| m.how == *how && m.touch == "read64" && m.cpus == "all")
                .map(|m| (m.smp as f64, m.median_ns))
                .collect(),
        })
        .collect();
    plot::svg(
        &plot::Chart {
            title: "map + read 64 bytes + unmap, every CPU at once (QEMU TCG, 4-level paging, median)",
            x_label: "CPUs",
            y_label: "ns per operation (TCG)",
            x_log2: true,
            y_log10: true,
        },
        &series,
    )
}

fn model_plot(sweep: &[Sweep]) -> String {
    let series: Vec<plot::Series> = ["window", "reinsert"]
        .iter()
        .map(|s| plot::Series {
            name: format!("{} (model)", describe(s)),
            points: sweep
                .iter()
                .filter(|r| r.strategy == *s)
                .map(|r| (r.cpus as f64, r.initiator_ns))
                .collect(),
        })
        .collect();
    plot::svg(
        &plot::Chart {
            title: "modelled cost per access to the accessing CPU (simulator counts × published costs)",
            x_label: "CPUs",
            y_label: "ns (model)",
            x_log2: true,
            y_log10: true,
        },
        &series,
    )
}

/// The CPU counts booted at `paging`: `1, 2, 4 and 8`.
fn cpu_counts(paging: Paging) -> String {
    let smps: Vec<String> = BOOTS
        .iter()
        .filter(|b| b.1 == paging)
        .map(|b| b.0.to_string())
        .collect();
    match smps.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => "no".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_names_the_boots_at_each_depth() {
        assert_eq!(cpu_counts(Paging::Four), "1, 2, 4 and 8");
        assert_eq!(cpu_counts(Paging::Five), "2");
        let d = document(&Figures::default(), &[], &Machine::default()).unwrap();
        let method = d.split("\n## Method\n").nth(1).unwrap();
        let m = method.split("\n## ").next().unwrap().replace('\n', " ");
        assert!(
            m.contains("booted at 1, 2, 4 and 8 CPUs with 4-level paging (`no5lvl`"),
            "{m}"
        );
        assert!(m.contains("at 2 CPUs with 5-level paging (LA57"), "{m}");
        assert!(
            m.contains(&format!("`{PROGRAM} -m 4096 -r 3 -b 5000`")),
            "{m}"
        );
    }

    #[test]
    fn the_template_fills_and_cites_nothing_outside_the_repository() {
        let d = document(&Figures::default(), &[], &Machine::default()).unwrap();
        assert!(!d.contains("{{"), "{d}");
        assert!(!d.contains("../"), "a path outside the repository: {d}");
        assert!(d.contains("a5102476a24b") && d.contains("x86: Concurrent TLB flushes"));
    }
}
