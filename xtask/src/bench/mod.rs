// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `cargo xtask bench`: the comparison this project exists for.
//!
//! On the host, the simulator sweep (a model) and the core's benchmarks
//! (`bench-core`); then the patched kernel `cargo xtask test` builds, booted
//! once per [`BOOTS`] entry to run the series' benchmark program ([`PROGRAM`];
//! and [`POPULATE_PROGRAM`] at 4-level on [`tables::POPULATE_SMPS`] CPUs),
//! and once more under QEMU's instruction clock to count instructions. Each
//! boot's log is kept in the cache (`<cache>/logs/bench-smp<N>-<4|5>level.log`),
//! which `--from-logs` reads back instead of booting. The report is
//! docs/results.md (benches/results.md.in with its placeholders filled), its
//! tables on the terminal, and three plots.

mod parse;
mod plot;
mod tables;

use crate::kernel::{self, Cache, Extra, Paging};
use crate::report::Report;
use crate::root;
use anyhow::{Context as _, Result, bail, ensure};
use parse::{Figures, HOWS, Sweep};
use tables::describe;

/// The CPU count booted at both paging depths, to compare them.
const DEPTH_SMP: u32 = 2;
/// The boots: each CPU count at 4-level, the depth of every table by CPU
/// count, target and plot; then [`DEPTH_SMP`] CPUs at 5-level.
const BOOTS: [(u32, Paging); 5] = [
    (1, Paging::Four),
    (2, Paging::Four),
    (4, Paging::Four),
    (8, Paging::Four),
    (DEPTH_SMP, Paging::Five),
];
/// The boots' name ([`kernel::script_log`]), and the counting boot's.
const BOOT_NAME: &str = "bench";
const COUNT_NAME: &str = "bench-icount";
/// Operations per microbenchmark run, runs per figure, MMIO stores per
/// end-to-end configuration: chosen for the run time under TCG (with 8
/// guest CPUs on 2 host cores, re-insertion on every CPU takes ms per
/// operation), not for any result.
const OPERATIONS: u32 = 4096;
const ROUNDS: u32 = 3;
const STORES: u32 = 5000;
/// The series' benchmark programs (in the initramfs' `/bin`); rounds of
/// the population benchmark (each populates 256 MiB and faults in 64 MiB).
const PROGRAM: &str = "guest_memfd_no_direct_map_bench";
const POPULATE_PROGRAM: &str = "guest_memfd_populate_bench";
const POPULATE_ROUNDS: u32 = 3;
/// The counting kernel: the boot configuration without the debug checks
/// that make every `preempt_disable()` and `smp_processor_id()` an
/// out-of-line call (Debian's kernels have none), booted on one CPU so no
/// other CPU's instructions advance the shared clock.
const COUNT_BUILD: &str = "count";
const COUNT_DISABLE: [&str; 1] = ["DEBUG_PREEMPT"];

fn runs_populate(smp: u32, paging: Paging) -> bool {
    paging == Paging::Four && tables::POPULATE_SMPS.contains(&smp)
}

impl Figures {
    /// Adds a boot's figures; fails when its log reports another depth (or
    /// none), and as [`parse::group`] does.
    fn add(&mut self, smp: u32, paging: Paging, log: &str) -> Result<()> {
        kernel::check_paging(log, paging)?;
        let mut rows = parse::group(&parse::MICRO, log)?;
        rows.extend(parse::group(&parse::EXITS, log)?);
        self.boots.push((smp, paging, rows));
        if runs_populate(smp, paging) {
            let p = parse::group(&parse::POPULATION, log)?;
            self.boots.last_mut().unwrap().2.extend(p);
        }
        Ok(())
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
        let tsv = crate::bench_core::cargo_bench("sim", "sim_sweep", &["--tsv"])?;
        sweep = parse::sweep(&tsv)?;
        println!("    {} rows", sweep.len());
        Ok(())
    });
    let mut figures = Figures::default();
    let built = if from_logs {
        None
    } else {
        report.stage("host: the core's benchmarks (docs/bench-core.md)", || {
            if !crate::prereq::has_command("valgrind") {
                crate::prereq::apt_install(&["valgrind"])?;
            }
            crate::bench_core::measure().map(drop)
        });
        match kernel::build(&mut report, &cache, false) {
            None => return report_results(report, &figures, &sweep),
            built => built,
        }
    };
    // A boot's log: booted, or with `--from-logs` read back. Each boot is a
    // stage of its own: one failing leaves the others.
    let (built_ref, cache_ref) = (built.as_ref(), &cache);
    let log = |stage: String, smp, paging, name, script: String, extra| {
        let saved = kernel::script_log(cache_ref, name, smp, paging);
        let stage = if from_logs {
            format!("results of {}", saved.display())
        } else {
            stage
        };
        let log = move || match built_ref {
            Some(built) => kernel::boot_script(cache_ref, built, smp, paging, name, &script, extra),
            None => {
                std::fs::read_to_string(&saved).with_context(|| format!("read {}", saved.display()))
            }
        };
        (stage, log)
    };
    for (smp, paging) in BOOTS {
        let mut script =
            format!("#!/bin/sh\n/bin/{PROGRAM} -m {OPERATIONS} -r {ROUNDS} -b {STORES}\n");
        if runs_populate(smp, paging) {
            script += &format!("/bin/{POPULATE_PROGRAM} -r {POPULATE_ROUNDS}\n");
        }
        let stage = format!("kernel: benchmark boot, {smp} CPU(s), {paging} paging");
        let (stage, boot) = log(stage, smp, paging, BOOT_NAME, script, Extra::default());
        report.stage(&stage, || {
            figures.add(smp, paging, &boot()?)?;
            let rows = &figures.boots.last().unwrap().2;
            let n = |kind| rows.keys().filter(|k| k.starts_with(kind)).count();
            println!(
                "    {} microbenchmark figures, {} end-to-end, {} population",
                n("micro "),
                n("exits "),
                n("populate ")
            );
            Ok(())
        });
    }
    let mut counted = None;
    if let Some(built) = &built {
        let stage = format!(
            "kernel: build {COUNT_BUILD} (boot config without {})",
            COUNT_DISABLE.join(", ")
        );
        report.stage(&stage, || {
            counted = Some(kernel::build_variant(
                &cache,
                built,
                COUNT_BUILD,
                &COUNT_DISABLE,
            )?);
            Ok(())
        });
    }
    // The instruction clock, and of KUnit only the `gmem_kmap` suite, which
    // reports the paging depth: the other suites ran in the other boots, and
    // under this clock's single-threaded timing one case waiting for the
    // allocator to reuse pages (`ndm_test_reuse_after_free`) does not see it.
    let extra = Extra {
        qemu: &["-icount", "shift=0,sleep=off"],
        cmdline: "kunit.filter_glob=gmem_kmap",
        kernel: counted.as_deref(),
        ..Extra::default()
    };
    let stage =
        "kernel: instruction-count boot, 1 CPU, 4-level paging, QEMU -icount shift=0".to_string();
    let script = format!("#!/bin/sh\n/bin/{PROGRAM} -m {OPERATIONS} -r {ROUNDS}\n");
    let (stage, boot) = log(stage, 1, Paging::Four, COUNT_NAME, script, extra);
    report.stage(&stage, || {
        ensure!(
            from_logs || counted.is_some(),
            "the counting kernel was not built"
        );
        figures.count = parse::group(&parse::COUNT, &boot()?)?;
        println!("    {} instruction counts", figures.count.len());
        Ok(())
    });
    report_results(report, &figures, &sweep)
}

fn report_results(mut report: Report, figures: &Figures, sweep: &[Sweep]) -> bool {
    report.stage("results: table, docs/results.md, plots", || {
        if figures.smps(Paging::Four).is_empty() || sweep.is_empty() {
            bail!("nothing measured to report");
        }
        let doc = document(figures, sweep, &machine())?;
        // The page's tables, each under its heading.
        let mut heading = None;
        for line in doc.lines() {
            if line.starts_with('#') {
                heading = Some(line);
            } else if line.starts_with('|') || line.starts_with("No figures") {
                if let Some(h) = heading.take() {
                    println!("\n    {h}");
                }
                println!("    {line}");
            }
        }
        println!();
        write("docs/results.md", &doc)?;
        write("docs/results-micro.svg", &micro_plot(figures))?;
        write("docs/results-model.svg", &model_plot(sweep))?;
        ensure!(
            figures
                .boots
                .iter()
                .any(|b| b.2.keys().any(|k| k.starts_with("populate "))),
            "no population figures"
        );
        write("docs/results-populate.svg", &populate_plot(figures))
    });
    report.finish()
}

fn write(path: &str, text: &str) -> Result<()> {
    let path = root().join(path);
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    println!("    wrote {}", path.display());
    Ok(())
}

/// Where the figures were made, for the page's Machine section.
fn machine() -> Vec<(&'static str, String)> {
    let sh = |c: &str| {
        let out = std::process::Command::new("sh").args(["-c", c]).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    vec![
        ("host_cpu", crate::bench_core::cpu_model()),
        ("host_cpus", cores.to_string()),
        ("host_kernel", sh("uname -sr")),
        ("qemu_version", sh("qemu-system-x86_64 --version | head -1")),
        ("written", sh("date -u '+%Y-%m-%d %H:%M UTC'")),
    ]
}

/// The results page's prose, with a `{{name}}` for each figure and table:
/// built in, so that the text and the code filling it are one version.
const TEMPLATE: &str = include_str!("../../../benches/results.md.in");

/// docs/results.md: [`TEMPLATE`] filled with the figures.
fn document(f: &Figures, sweep: &[Sweep], machine: &[(&str, String)]) -> Result<String> {
    let strategies: String = HOWS
        .iter()
        .map(|how| format!("- `{how}`: {}\n", describe(how)))
        .collect();
    let mut values: Vec<(String, String)> = machine
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    for (k, v) in tables::MODEL {
        values.push((k.into(), v.to_string()));
    }
    for touch in parse::TOUCHES {
        for cpus in parse::CPU_SETS {
            values.push((
                format!("micro_{touch}_{cpus}"),
                tables::micro(f, touch, cpus),
            ));
            values.push((
                format!("micro_{touch}_{cpus}_depth"),
                tables::micro_depth(f, touch, cpus),
            ));
        }
    }
    for w in parse::WORKLOADS {
        values.push((format!("{w}_mib"), tables::mib(f, w).to_string()));
        values.push((format!("populate_{w}"), tables::population(f, w)));
    }
    let rest = [
        ("boots_4level", cpu_counts(Paging::Four)),
        ("boots_5level", cpu_counts(Paging::Five)),
        ("depth_smp", DEPTH_SMP.to_string()),
        ("program", PROGRAM.into()),
        ("operations", OPERATIONS.to_string()),
        ("rounds", ROUNDS.to_string()),
        ("stores", STORES.to_string()),
        ("strategies", strategies),
        ("targets", tables::targets(f)),
        ("instructions", tables::instructions(f)),
        ("exits", tables::exits(f)),
        ("exits_depth", tables::exits_depth(f)),
        ("populate_targets", tables::population_targets(f)),
        ("sweep", tables::sweep(sweep)),
    ];
    values.extend(rest.map(|(k, v)| (k.to_string(), v)));
    fill(TEMPLATE, &values)
}

/// `template` with each `{{name}}` replaced by the value of `name`, its
/// trailing newlines dropped (a table ends where its placeholder's line
/// does). A template and its code that disagree are a bug: a placeholder
/// without a value, a value without a placeholder and a name given twice
/// are errors.
fn fill(template: &str, values: &[(String, String)]) -> Result<String> {
    let mut out = template.to_string();
    for (i, (name, value)) in values.iter().enumerate() {
        ensure!(
            values[..i].iter().all(|v| v.0 != *name),
            "the value `{name}` is given twice"
        );
        let placeholder = format!("{{{{{name}}}}}");
        ensure!(
            out.contains(&placeholder),
            "the template does not use the value `{name}`"
        );
        out = out.replace(&placeholder, value.trim_end_matches('\n'));
    }
    if let Some(at) = out.find("{{") {
        let rest = out[at..].lines().next().unwrap_or_default();
        bail!("no value for the template's `{rest}`");
    }
    Ok(out)
}

/// The three plots: cost or time against the CPU count, both axes log.
fn chart(title: &str, y_label: &str, series: Vec<plot::Series>) -> String {
    plot::svg(
        &plot::Chart {
            title,
            x_label: "CPUs",
            y_label,
        },
        &series,
    )
}

fn micro_plot(f: &Figures) -> String {
    let series = HOWS.iter().map(|how| plot::Series {
        name: describe(how).into(),
        points: (f.smps(Paging::Four).into_iter())
            .filter_map(|s| Some((s as f64, f.ns(Paging::Four, s, how, "read64", "all")?)))
            .collect(),
    });
    let title = "map + read 64 bytes + unmap, every CPU at once (QEMU TCG, 4-level paging, median)";
    chart(title, "ns per operation (TCG)", series.collect())
}

fn model_plot(sweep: &[Sweep]) -> String {
    let series = ["window", "reinsert"].iter().map(|s| plot::Series {
        name: format!("{} (model)", describe(s)),
        points: sweep
            .iter()
            .filter(|r| r.0 == *s)
            .map(|r| (r.1 as f64, r.2[5]))
            .collect(),
    });
    let title =
        "modelled cost per access to the accessing CPU (simulator counts × published costs)";
    chart(title, "ns (model)", series.collect())
}

fn populate_plot(f: &Figures) -> String {
    let mut series = Vec::new();
    for w in parse::WORKLOADS {
        for c in ["pool", "page"] {
            series.push(plot::Series {
                name: format!("{w}, {c}"),
                points: (tables::POPULATE_SMPS.iter())
                    .filter_map(|&s| Some((s as f64, tables::pop_ratio(f, s, w, c)?)))
                    .collect(),
            });
        }
    }
    let title = "population with the flag, time ÷ flag off (QEMU TCG, 4-level paging, median)";
    chart(title, "time ÷ flag off", series)
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
    use parse::tests::fixture;

    fn figures() -> Figures {
        let mut f = Figures::default();
        for (smp, paging) in BOOTS {
            f.add(
                smp,
                paging,
                &fixture(&format!("bench-smp{smp}-{}.log", paging.tag())),
            )
            .unwrap();
        }
        f.count = parse::group(&parse::COUNT, &fixture("bench-icount-smp1-4level.log")).unwrap();
        f
    }

    /// fixtures/results.md is what the tables looked like before they were
    /// generated from rows, blank machine fields and all.
    #[test]
    fn the_fixture_logs_give_the_fixture_page() {
        let sweep = parse::sweep(&fixture("sweep.tsv")).unwrap();
        let machine = [
            "host_cpu",
            "host_cpus",
            "host_kernel",
            "qemu_version",
            "written",
        ];
        let machine = machine.map(|k| (k, if k == "host_cpus" { "0" } else { "" }.to_string()));
        let page = document(&figures(), &sweep, &machine).unwrap();
        let expected = fixture("results.md");
        for (n, (a, b)) in page.lines().zip(expected.lines()).enumerate() {
            assert_eq!(a, b, "line {}", n + 1);
        }
        assert_eq!(page, expected);
        assert!(!page.contains("../"), "a path outside the repository");
        assert!(page.contains("booted at 1, 2, 4 and 8 CPUs with 4-level paging"));
        assert!(page.contains("`guest_memfd_no_direct_map_bench -m 4096 -r 3 -b 5000`"));
    }

    #[test]
    fn a_boot_at_another_depth_fails_and_adds_nothing() {
        let mut f = Figures::default();
        let e = f
            .add(2, Paging::Five, &fixture("bench-smp2-4level.log"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "asked for 5-level paging, the kernel reports 4-level"
        );
        assert!(f.boots.is_empty());
    }

    #[test]
    fn the_template_and_its_values_must_agree() {
        let v = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        let table = [("table", "| 1 |\n| 2 |\n"), ("n", "4")];
        let ok = fill("| a |\n{{table}}\n\n{{n}} CPUs, {{n}} again\n", &v(&table)).unwrap();
        assert_eq!(ok, "| a |\n| 1 |\n| 2 |\n\n4 CPUs, 4 again\n");
        for (template, values, error) in [
            (
                "{{a}} and {{b}}",
                &[("a", "1")][..],
                "no value for the template's `{{b}}`",
            ),
            (
                "{{a}}",
                &[("a", "1"), ("b", "2")],
                "the template does not use the value `b`",
            ),
            (
                "{{a}}",
                &[("a", "1"), ("a", "2")],
                "the value `a` is given twice",
            ),
            ("x {{a} y\n", &[], "no value for the template's `{{a} y`"),
        ] {
            assert_eq!(fill(template, &v(values)).unwrap_err().to_string(), error);
        }
    }
}
