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
//! 4. the table on the terminal, docs/results.md and the plots
//!    docs/results-micro.svg, docs/results-model.svg and
//!    docs/results-populate.svg, all by CPU count at 4-level, with the two
//!    depths side by side at [`DEPTH_SMP`] CPUs.

mod instructions;
mod parse;
mod plot;
mod populate;
mod results;

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
        let doc = document(figures, sweep);
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

fn machine() -> String {
    let cpu = crate::bench_core::cpu_model();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let sh = |c: &str| {
        std::process::Command::new("sh")
            .args(["-c", c])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    format!(
        "- host: {cpu}, {cores} CPUs, {}\n- QEMU: {} (`-accel tcg -cpu max -m 1G`, multi-threaded TCG; \
         the 4-level boots add `no5lvl` to the kernel command line, the 5-level boot has LA57 from `-cpu max`)\n- written: {}\n",
        sh("uname -sr"),
        sh("qemu-system-x86_64 --version | head -1"),
        sh("date -u '+%Y-%m-%d %H:%M UTC'"),
    )
}

/// The targets on the TCG timings and on the instruction counts.
fn all_targets(four: &Figures) -> Vec<results::Target> {
    let mut t = results::targets(&four.micro);
    t.extend(instructions::targets(&four.insns));
    t
}

fn document(figures: &Figures, sweep: &[Sweep]) -> String {
    let (four, five) = (figures.at(Paging::Four), figures.at(Paging::Five));
    let mut d = String::new();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    writeln!(d, "# Results: the window against re-insertion\n").unwrap();
    writeln!(
        d,
        "Generated by `cargo xtask bench`; rerun it to refresh this page and its plots.\n"
    )
    .unwrap();
    writeln!(d, "## Machine\n\n{}", machine()).unwrap();
    writeln!(
        d,
        "**Every kernel figure below comes from a guest kernel under QEMU's TCG \
         (software emulation)**: its nanoseconds are not hardware nanoseconds, \
         and only ratios measured in the same boot mean anything. At 4 and 8 \
         guest CPUs the {cores} host CPUs are overcommitted, so figures with every \
         CPU looping at once include waiting for a host CPU.\n"
    )
    .unwrap();
    d.push_str(&method());
    writeln!(d, "\n## Strategies\n").unwrap();
    for how in HOWS {
        writeln!(d, "- `{how}`: {}", describe(how)).unwrap();
    }
    writeln!(
        d,
        "\n## Targets\n\n{}",
        results::targets_table(&all_targets(&four))
    )
    .unwrap();
    writeln!(
        d,
        "\n## Instructions per map + touch + unmap (counted, one CPU)\n\n{}{}\n{}",
        instructions::COUNTED,
        instructions::table(&four.insns),
        instructions::model_note()
    )
    .unwrap();
    d.push_str(UNDER_TCG);
    for (touch, cpus, what) in [
        (
            "read64",
            "one",
            "read 64 bytes, one CPU looping, the others idle",
        ),
        ("read64", "all", "read 64 bytes, every CPU looping at once"),
        ("copy4k", "one", "copy the 4 KiB page, one CPU looping"),
        ("copy4k", "all", "copy the 4 KiB page, every CPU at once"),
    ] {
        writeln!(d, "\n## Map, {what}, unmap (ns per operation)\n").unwrap();
        d.push_str(&results::micro_table(&four.micro, touch, cpus));
        writeln!(d, "\n### Paging depth at {DEPTH_SMP} CPUs\n").unwrap();
        d.push_str(&results::micro_depth_table(
            &four.micro,
            &five.micro,
            DEPTH_SMP,
            touch,
            cpus,
        ));
    }
    writeln!(
        d,
        "\n![ns per operation against CPU count](results-micro.svg)\n"
    )
    .unwrap();
    writeln!(d, "## End to end: MMIO exits per second\n").unwrap();
    d.push_str(END_TO_END);
    d.push_str(&results::exits_table(&four.exits));
    writeln!(d, "\n### Paging depth at {DEPTH_SMP} CPUs\n").unwrap();
    d.push_str(&results::exits_depth_table(
        &four.exits,
        &five.exits,
        DEPTH_SMP,
    ));
    d.push_str(&populate::section(&four.populate));
    writeln!(
        d,
        "\n## Host: the simulator sweep, and a model of its cost\n"
    )
    .unwrap();
    d.push_str(MODEL);
    d.push_str(&results::sweep_table(sweep));
    writeln!(
        d,
        "\n![modelled cost per access against CPU count](results-model.svg)\n"
    )
    .unwrap();
    writeln!(
        d,
        "The core's own bookkeeping (instructions and wall time per map + unmap) \
         is in [bench-core.md](bench-core.md)."
    )
    .unwrap();
    d
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

/// How the figures were made, with the parameters this run used.
fn method() -> String {
    let (four, five) = (cpu_counts(Paging::Four), cpu_counts(Paging::Five));
    format!(
        "\
## Method

The kernel is the one `cargo xtask test` builds: Linux 6.12 with
`kernel-patch/`, `CONFIG_KVM_GMEM_NO_DIRECT_MAP_BENCH=y`,
`CONFIG_X86_5LEVEL=y`. It is booted at {four} CPUs with 4-level paging
(`no5lvl` on the kernel command line), and at {five} CPUs with 5-level
paging (LA57, which `-cpu max` offers under TCG); every boot's log must
report the depth it asked for. In each boot the series' benchmark program
(`{PROGRAM} -m {OPERATIONS} -r {ROUNDS} -b {STORES}`) runs:

- **The microbenchmark** (`<debugfs>/kvm/gmem_no_direct_map/bench`): a
  kernel thread bound to a CPU maps a page of a guest_memfd file, touches it
  (reads 64 bytes, or copies the 4 KiB page out) and unmaps it, through the
  very functions KVM's accesses use. Window, re-insertion and the raw floor
  use a file with `GUEST_MEMFD_FLAG_NO_DIRECT_MAP`; the plain direct map uses
  one without. Each CPU has a page of its own. A sample is 16 operations
  timed together with `ktime_get_ns()`; a run is {OPERATIONS} operations
  per CPU; median and 99th percentile are over the run's samples (all CPUs'
  together when every CPU loops). Every strategy runs once per round, side
  by side, for {ROUNDS} rounds; a figure is the median over the rounds.
- **One CPU looping** leaves the other CPUs idle: what one access costs.
  **Every CPU at once** runs the same loop on every online CPU, started
  together: where re-insertion's shootdowns interrupt everyone.
- **End to end**: {STORES} MMIO stores per configuration, below.
- **Paging depth**: the tables by CPU count, the targets and the plots are
  the 4-level boots. Under each table, *Paging depth at {DEPTH_SMP} CPUs*
  sets that CPU count's figures from the 4-level boot and the 5-level boot
  side by side, with 5-level ÷ 4-level: the same operations with one more
  level of page table (under TCG, one more level in each of QEMU's
  software page walks).
"
    )
}

const UNDER_TCG: &str = "\
### Reading these figures under TCG

Two properties of the emulator shape every kernel figure, whatever the
strategy; they limit what the targets can show here:

- **An `invlpg` costs QEMU a flush of its whole software TLB.** QEMU's
  `tlb_flush_page_locked()` (accel/tcg/cputlb.c) flushes every entry of the
  MMU index when the page lies in the range it tracks for large pages, and
  that range grows to cover every large page ever mapped: the direct map and
  the kernel image, and so the vmalloc space between them where the window
  and the floor's page live. After each local flush, every page the CPU
  touches next costs a software page walk. The raw floor pays this once per
  operation too, which is why it costs several times the plain direct map
  here. The window's bookkeeping touches more pages after each flush than
  the floor does (the task's slot stack, the per-CPU counters, the slot PTE
  array, the window's configuration), and under TCG each is likely another
  software page walk; on hardware, where `invlpg` drops one entry, those
  stay cached. The window-to-floor ratio measured here is likely larger
  than on hardware; this has not been checked on hardware.
- **Guest CPUs beyond the host's are time-sliced.** With more guest CPUs
  than host CPUs, a guest IPI waits until the host schedules the receiving
  vCPU thread, so re-insertion with every CPU looping costs milliseconds;
  and the whole guest runs slower at 8 CPUs, as the floor and the plain
  direct map show by slowing down with the window.

";

const END_TO_END: &str = "\
A guest copies a loop into a private page and runs it there: each
iteration stores the loop counter to an MMIO address, which exits to KVM;
KVM fetches the store from the private page (through the window, a
re-insertion, or the direct map when the file has no flag), decodes it and
exits to userspace, which checks the value. `shared` runs the loop from
shared memory (no guest_memfd access at all). Exits per second over the
whole loop, the median over the rounds (every configuration once per
round); the counts per exit come from the feature's debugfs counters.

";

const MODEL: &str = "\
**This part is a model, not a measurement.** The simulator runs the core's
real code for both strategies, every CPU accessing a page of its own, and
counts the events per access; the cost columns multiply those counts by
published figures (`../shared/notes/background.md`): a local single-page
flush ≈ 100 ns (commit a5102476a24b); a shootdown, from Nadav Amit's
Haswell measurements (661 ns alone, 1436 ns with one remote CPU, 1571 ns
with three), ≈ 775 ns for the first remote CPU and 67.5 ns for each further
one, extrapolated linearly past three; PTE writes priced at 0. The last
column adds 100 ns of interrupt and flush per IPI on the CPUs receiving
them (a lower bound).

";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_names_the_boots_at_each_depth() {
        assert_eq!(cpu_counts(Paging::Four), "1, 2, 4 and 8");
        assert_eq!(cpu_counts(Paging::Five), "2");
        let m = method().replace('\n', " ");
        assert!(
            m.contains("booted at 1, 2, 4 and 8 CPUs with 4-level paging (`no5lvl`"),
            "{m}"
        );
        assert!(m.contains("at 2 CPUs with 5-level paging (LA57"), "{m}");
    }
}
