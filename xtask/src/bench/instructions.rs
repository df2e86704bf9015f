// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Instructions per map + touch + unmap, counted in the booted kernel.
//!
//! TCG's nanoseconds are the emulator's, not a CPU's. An instruction count
//! is the same on hardware: one boot on [`SMP`] CPU runs under QEMU's
//! `-icount shift=0`, where the guest's clock, and with it the TSC that
//! `rdtsc` reads, advances exactly one tick per guest instruction. The
//! kernel's microbenchmark reads the TSC around each batch of operations,
//! so its `median_ticks` is the instructions one operation executes: the
//! benchmark loop's own share, identical for every strategy, included. The
//! floor (PTE store, touch, PTE clear, `invlpg`, nothing else) pays that
//! share too, so a strategy's count minus the floor's is what its
//! bookkeeping adds.
//!
//! The kernel counted is the boot configuration without `DEBUG_PREEMPT`
//! ([`BUILD`]), as a distribution builds it.
//!
//! From the counts and a CPU's per-event costs, [`table`] gives a hardware
//! estimate. It is a model, with its assumptions printed beside it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::parse::{HOWS, TOUCHES, bench_lines, median, num};
use crate::kernel::Extra;
use anyhow::{Context as _, Result};

/// CPUs of the counting boot: one, so that no other CPU's instructions
/// advance the shared clock.
pub const SMP: u32 = 1;
/// Its kernel: the boot configuration without the debug checks that put
/// out-of-line calls on every `preempt_disable()` and `smp_processor_id()`,
/// which Debian's kernels do not have, so that the counts are a
/// production kernel's.
pub const BUILD: &str = "count";
pub const DISABLE: [&str; 1] = ["DEBUG_PREEMPT"];

/// Its options: the instruction clock, and of KUnit only the `gmem_kmap`
/// suite, which reports the paging depth the boot is checked for. The
/// other suites ran in every other boot; nothing of theirs is measured
/// here, and under the instruction clock's single-threaded timing one case
/// that waits for the allocator to reuse pages (`ndm_test_reuse_after_free`)
/// does not see it.
pub fn extra(kernel: &std::path::Path) -> Extra<'_> {
    Extra {
        qemu: &["-icount", "shift=0,sleep=off"],
        cmdline: "kunit.filter_glob=gmem_kmap",
        kernel: Some(kernel),
        ..Extra::default()
    }
}
/// Its logs: [`crate::kernel::script_log`]s of this name.
pub const NAME: &str = "bench-icount";

/// Model: instructions a CPU retires per nanosecond (3 GHz, one per cycle).
const INSNS_PER_NS: f64 = 3.0;
/// Model: one `invlpg` (the figure the issue gives).
const INVLPG_NS: f64 = 100.0;
/// Model: waiting for one other CPU to take a shootdown IPI and flush.
const IPI_NS: f64 = 1000.0;
/// Model: one CR3 write (the temporary mm makes two per operation).
const CR3_NS: f64 = 100.0;
/// The CPU counts the estimate is given for.
const MODEL_CPUS: [u32; 3] = [2, 8, 64];

/// One strategy's count for one touch: the median over the rounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Count {
    pub how: String,
    pub touch: String,
    pub insns: f64,
}

/// The counts of the counting boot's log (one CPU looping: `cpus=one`).
pub fn parse(log: &str) -> Result<Vec<Count>> {
    let mut rounds: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for line in bench_lines(log) {
        let (kv, words, rest) = line?;
        if words.first() != Some(&"micro") || !words.contains(&"all") {
            continue;
        }
        if kv.get("cpus") != Some(&"one") {
            continue;
        }
        let key = |k: &str| kv.get(k).map(|v| v.to_string()).unwrap_or_default();
        rounds
            .entry((key("how"), key("touch")))
            .or_default()
            .push(num(&kv, "median_ticks", rest)?);
    }
    let mut counts = Vec::new();
    for touch in TOUCHES {
        for how in HOWS {
            let mut r = rounds
                .remove(&(how.to_string(), touch.to_string()))
                .with_context(|| format!("no `{how} {touch} one` count in the log"))?;
            counts.push(Count {
                how: how.into(),
                touch: touch.into(),
                insns: median(&mut r),
            });
        }
    }
    Ok(counts)
}

fn find(c: &[Count], how: &str, touch: &str) -> Option<f64> {
    c.iter()
        .find(|x| x.how == how && x.touch == touch)
        .map(|x| x.insns)
}

/// Model: what one operation of `how` costs a CPU among `cpus`, in ns.
fn model_ns(how: &str, insns: f64, cpus: u32) -> f64 {
    let events = match how {
        "floor" | "window" | "shared" | "kmap" => INVLPG_NS,
        "tempmm" => 2.0 * CR3_NS,
        "reinsert" => INVLPG_NS + f64::from(cpus - 1) * IPI_NS,
        _ => 0.0,
    };
    insns / INSNS_PER_NS + events
}

/// The counts, each over the floor, and the hardware estimate (read64).
pub fn table(c: &[Count]) -> String {
    let mut t = String::from(
        "| strategy | read64 instructions | − floor | copy4k instructions | − floor |",
    );
    for n in MODEL_CPUS {
        write!(t, " model ns, {n} CPUs |").unwrap();
    }
    t.push_str("\n|---|---:|---:|---:|---:|");
    t.push_str(&"---:|".repeat(MODEL_CPUS.len()));
    t.push('\n');
    for how in HOWS {
        let (Some(r), Some(k)) = (find(c, how, "read64"), find(c, how, "copy4k")) else {
            continue;
        };
        let over = |x: f64, touch| find(c, "floor", touch).map_or(f64::NAN, |f| x - f);
        write!(
            t,
            "| {how} | {r:.0} | {:+.0} | {k:.0} | {:+.0} |",
            over(r, "read64"),
            over(k, "copy4k")
        )
        .unwrap();
        for n in MODEL_CPUS {
            write!(t, " {:.0} |", model_ns(how, r, n)).unwrap();
        }
        t.push('\n');
    }
    t
}

/// The model's assumptions, as the results page's placeholders (the
/// page says what they are).
pub fn model_values() -> [(&'static str, String); 4] {
    [
        ("model_insns_per_ns", INSNS_PER_NS.to_string()),
        ("model_invlpg_ns", INVLPG_NS.to_string()),
        ("model_cr3_ns", CR3_NS.to_string()),
        ("model_ipi_ns", IPI_NS.to_string()),
    ]
}

/// The target on the counts: each window within 100 instructions
/// of the floor per map + unmap pair (read64, one CPU): through KVM's
/// accessors (`window`, `shared`) and the window's own calls (`kmap`).
pub fn targets(c: &[Count]) -> Vec<super::results::Target> {
    ["window", "shared", "kmap"]
        .iter()
        .map(|how| {
            let over = find(c, how, "read64")
                .zip(find(c, "floor", "read64"))
                .map(|(x, f)| x - f);
            super::results::Target {
                what: format!("{how} ≤ floor + 100 instructions per map + unmap (read64, counted)"),
                figure: over.map_or("not counted".into(), |o| format!("{o:+.0}")),
                met: over.is_some_and(|o| o <= 100.0),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> String {
        let mut s = String::from("gmem-bench: cpus=1\n");
        for round in 0..3 {
            for (how, insns) in [
                ("floor", 40),
                ("window", 300),
                ("shared", 290),
                ("kmap", 200),
                ("tempmm", 500),
                ("reinsert", 900),
                ("direct", 30),
            ] {
                for touch in TOUCHES {
                    let insns = insns + round + if touch == "copy4k" { 1000 } else { 0 };
                    writeln!(
                        s,
                        "gmem-bench: micro round={round} how={how} touch={touch} cpus=one cpu=0 median_ns=9 p99_ns=9 median_ticks=99\n\
                         gmem-bench: micro round={round} how={how} touch={touch} cpus=one all median_ns=9 p99_ns=9 median_ticks={insns}"
                    )
                    .unwrap();
                }
            }
        }
        s
    }

    #[test]
    fn counts_are_the_median_over_rounds_of_the_all_lines() {
        let c = parse(&log()).unwrap();
        assert_eq!(c.len(), HOWS.len() * TOUCHES.len());
        assert_eq!(find(&c, "window", "read64"), Some(301.0));
        assert_eq!(find(&c, "window", "copy4k"), Some(1301.0));
    }

    #[test]
    fn a_missing_strategy_or_count_fails() {
        let without_shared: String = log()
            .lines()
            .filter(|l| !l.contains("how=shared"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            parse(&without_shared)
                .unwrap_err()
                .to_string()
                .contains("shared")
        );
        let no_ticks = log().replace("median_ticks=", "ticks=");
        assert!(
            parse(&no_ticks)
                .unwrap_err()
                .to_string()
                .contains("median_ticks")
        );
    }

    #[test]
    fn targets_compare_with_the_floor() {
        let c = parse(&log()).unwrap();
        let t = targets(&c);
        assert!(t.iter().all(|x| !x.met), "{t:?}");
        assert!(t[0].figure.contains("+260"), "{t:?}");
        let close: Vec<Count> = c
            .into_iter()
            .map(|x| Count {
                insns: if x.how == "floor" {
                    x.insns + 250.0
                } else {
                    x.insns
                },
                ..x
            })
            .collect();
        assert!(targets(&close).iter().all(|x| x.met));
        assert!(
            table(&close).contains("| window | 301 | +10 |"),
            "{}",
            table(&close)
        );
    }

    #[test]
    fn the_model_charges_reinsertion_per_cpu() {
        assert_eq!(model_ns("window", 300.0, 64), 200.0);
        assert_eq!(model_ns("reinsert", 300.0, 2), 1200.0);
        assert!(model_ns("reinsert", 300.0, 64) > model_ns("reinsert", 300.0, 8));
    }
}
