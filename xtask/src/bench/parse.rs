// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Reading what the benchmark boots and the simulator sweep printed.
//!
//! In a boot, the series' benchmark program, guest_memfd_no_direct_map_bench,
//! prints `gmem-bench: <kind> k=v ...` lines: `micro` for each run of the
//! kernel's microbenchmark, per CPU and `all` samples together, and `exits`
//! for each configuration of the end-to-end loop. A boot's figures are filed
//! under the paging depth it asked for, so its log must report that depth.

use std::collections::BTreeMap;

use crate::kernel::{self, Paging};
use anyhow::{Context as _, Result, anyhow, bail};

/// The microbenchmark's figures for one way, touch and CPU set in one boot,
/// each the median over the rounds.
#[derive(Clone, Debug, PartialEq)]
pub struct Micro {
    pub smp: u32,
    pub paging: Paging,
    pub how: String,
    pub touch: String,
    /// `one` (one CPU loops, the others idle) or `all` (every CPU at once).
    pub cpus: String,
    pub median_ns: f64,
    pub p99_ns: f64,
    pub rounds: usize,
}

/// One configuration of the end-to-end loop in one boot: exits per second
/// the median over the rounds, the counts summed over them.
#[derive(Clone, Debug, PartialEq)]
pub struct Exits {
    pub smp: u32,
    pub paging: Paging,
    pub config: String,
    pub stores: u64,
    pub rounds: usize,
    pub exits_per_sec: f64,
    pub window_maps: u64,
    pub reinsertions: u64,
    pub remote_flushes: u64,
}

/// One line of the simulator sweep (`--tsv`).
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    pub strategy: String,
    pub cpus: u32,
    pub local_flushes: f64,
    pub global_flushes: f64,
    pub ipis: f64,
    pub direct_map_writes: f64,
    pub slot_pte_writes: f64,
    pub initiator_ns: f64,
    pub machine_ns: f64,
}

pub const HOWS: [&str; 7] = [
    "floor", "window", "shared", "kmap", "tempmm", "reinsert", "direct",
];
pub const TOUCHES: [&str; 2] = ["read64", "copy4k"];
pub const CPU_SETS: [&str; 2] = ["one", "all"];
pub const CONFIGS: [&str; 5] = ["shared", "flag-off", "window", "shared-window", "reinsert"];

const PREFIX: &str = "gmem-bench: ";

/// One line of the benchmark program: its `k=v` pairs, its words without
/// `=`, and the text after the prefix.
pub(super) type BenchLine<'a> = (BTreeMap<&'a str, &'a str>, Vec<&'a str>, &'a str);

/// The benchmark program's lines of a log; an error line the guest printed
/// stops the reading with it.
pub(super) fn bench_lines(log: &str) -> impl Iterator<Item = Result<BenchLine<'_>>> {
    log.lines().filter_map(|raw| {
        let (_, rest) = raw.trim_end_matches('\r').split_once(PREFIX)?;
        let (kv, words) = fields(rest);
        Some(if kv.contains_key("error") {
            Err(anyhow!("the guest said: {}", rest.trim()))
        } else {
            Ok((kv, words, rest))
        })
    })
}

/// The `k=v` pairs of a line, and its words without `=`.
pub(super) fn fields(line: &str) -> (BTreeMap<&str, &str>, Vec<&str>) {
    let mut kv = BTreeMap::new();
    let mut words = Vec::new();
    for w in line.split_whitespace() {
        match w.split_once('=') {
            Some((k, v)) => {
                kv.insert(k, v.trim_matches('"'));
            }
            None => words.push(w),
        }
    }
    (kv, words)
}

pub(super) fn num<T: std::str::FromStr>(
    kv: &BTreeMap<&str, &str>,
    key: &str,
    line: &str,
) -> Result<T> {
    kv.get(key)
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no number {key}= in `{line}`"))
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Every figure of a boot on `smp` CPUs at `paging` depth; fails when the
/// log reports another depth (or none), on an error line or on a figure
/// missing from every round.
pub fn boot(smp: u32, paging: Paging, log: &str) -> Result<(Vec<Micro>, Vec<Exits>)> {
    kernel::check_paging(log, paging)?;
    let mut rounds: BTreeMap<(String, String, String), Vec<(f64, f64)>> = BTreeMap::new();
    let mut exits = Vec::new();
    for line in bench_lines(log) {
        let (kv, words, rest) = line?;
        match words.first().copied() {
            Some("micro") if words.contains(&"all") => {
                let key = |k: &str| kv.get(k).map(|v| v.to_string()).unwrap_or_default();
                rounds
                    .entry((key("how"), key("touch"), key("cpus")))
                    .or_default()
                    .push((num(&kv, "median_ns", rest)?, num(&kv, "p99_ns", rest)?));
            }
            Some("exits") => exits.push(Exits {
                smp,
                paging,
                config: kv.get("config").unwrap_or(&"").to_string(),
                stores: num(&kv, "stores", rest)?,
                rounds: 1,
                exits_per_sec: num(&kv, "exits_per_sec", rest)?,
                window_maps: num(&kv, "window_maps", rest)?,
                reinsertions: num(&kv, "reinsertions", rest)?,
                remote_flushes: num(&kv, "remote_flushes", rest)?,
            }),
            _ => {}
        }
    }
    let mut micro = Vec::new();
    for cpus in CPU_SETS {
        for touch in TOUCHES {
            for how in HOWS {
                let key = (how.to_string(), touch.to_string(), cpus.to_string());
                let runs = rounds
                    .get(&key)
                    .with_context(|| format!("no `{how} {touch} {cpus}` result in the log"))?;
                let mut med: Vec<f64> = runs.iter().map(|r| r.0).collect();
                let mut p99: Vec<f64> = runs.iter().map(|r| r.1).collect();
                micro.push(Micro {
                    smp,
                    paging,
                    how: how.into(),
                    touch: touch.into(),
                    cpus: cpus.into(),
                    median_ns: median(&mut med),
                    p99_ns: median(&mut p99),
                    rounds: runs.len(),
                });
            }
        }
    }
    let exits = CONFIGS
        .iter()
        .map(|c| merge_rounds(exits.iter().filter(|e| e.config == *c)))
        .collect::<Option<Vec<_>>>()
        .context("an end-to-end configuration is missing from the log")?;
    Ok((micro, exits))
}

/// One configuration's rounds as one figure; `None` without any.
fn merge_rounds<'a>(rounds: impl Iterator<Item = &'a Exits>) -> Option<Exits> {
    let rounds: Vec<&Exits> = rounds.collect();
    let mut rates: Vec<f64> = rounds.iter().map(|e| e.exits_per_sec).collect();
    let sum = |f: fn(&Exits) -> u64| rounds.iter().map(|e| f(e)).sum();
    Some(Exits {
        rounds: rounds.len(),
        exits_per_sec: if rates.is_empty() {
            return None;
        } else {
            median(&mut rates)
        },
        stores: sum(|e| e.stores),
        window_maps: sum(|e| e.window_maps),
        reinsertions: sum(|e| e.reinsertions),
        remote_flushes: sum(|e| e.remote_flushes),
        ..rounds[0].clone()
    })
}

/// The sweep's `--tsv` output.
pub fn sweep(tsv: &str) -> Result<Vec<Sweep>> {
    let mut rows = Vec::new();
    for line in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let n = |i: usize| -> Result<f64> {
            f.get(i)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("sweep: bad column {i} in `{line}`"))
        };
        rows.push(Sweep {
            strategy: f[0].to_string(),
            cpus: n(1)? as u32,
            slot_pte_writes: n(2)?,
            direct_map_writes: n(3)?,
            local_flushes: n(4)?,
            global_flushes: n(5)?,
            ipis: n(6)?,
            initiator_ns: n(7)?,
            machine_ns: n(8)?,
        });
    }
    if rows.is_empty() {
        bail!("sweep printed no rows");
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with(extra: &str) -> String {
        let mut log =
            String::from("[    1.0] boot\n[    1.1]     # paging: 4-level\ngmem-bench: cpus=2\n");
        for round in 0..3 {
            for cpus in CPU_SETS {
                for touch in TOUCHES {
                    for (i, how) in HOWS.iter().enumerate() {
                        let m = 100 * (i + 1) + round;
                        log.push_str(&format!(
                            "gmem-bench: micro round={round} how={how} touch={touch} cpus={cpus} cpu=0 median_ns=1 p99_ns=1\r\n\
                             gmem-bench: micro round={round} how={how} touch={touch} cpus={cpus} all median_ns={m} p99_ns={}\r\n",
                            m * 2
                        ));
                    }
                }
            }
        }
        for round in 0..3 {
            for c in CONFIGS {
                log.push_str(&format!(
                    "gmem-bench: exits round={round} config={c} stores=100 seconds=0.5 exits_per_sec={}.0 window_maps=100 reinsertions=0 remote_flushes=0\n",
                    200 + round * 10
                ));
            }
        }
        log + extra
    }

    #[test]
    fn boot_takes_the_median_of_the_rounds_of_the_all_lines() {
        let (micro, exits) = boot(2, Paging::Four, &log_with("")).unwrap();
        assert_eq!(micro.len(), HOWS.len() * TOUCHES.len() * CPU_SETS.len());
        let w = micro
            .iter()
            .find(|m| m.how == "window" && m.cpus == "all")
            .unwrap();
        assert_eq!(
            (w.median_ns, w.p99_ns, w.rounds, w.smp, w.paging),
            (201.0, 402.0, 3, 2, Paging::Four)
        );
        assert_eq!(exits.len(), CONFIGS.len());
        assert_eq!(exits[2].config, "window");
        assert_eq!(exits[2].paging, Paging::Four);
        assert_eq!(exits[2].exits_per_sec, 210.0, "the median of 200, 210, 220");
        assert_eq!(
            (exits[2].rounds, exits[2].stores, exits[2].window_maps),
            (3, 300, 300)
        );
    }

    #[test]
    fn boot_fails_on_an_error_line_or_a_missing_figure() {
        let bad =
            log_with("gmem-bench: exits round=0 config=window error=\"KVM_RUN: Bad address\"\n");
        assert!(
            boot(2, Paging::Four, &bad)
                .unwrap_err()
                .to_string()
                .contains("KVM_RUN")
        );
        let missing = log_with("").replace("how=floor touch=copy4k cpus=all all", "x");
        assert!(
            boot(2, Paging::Four, &missing)
                .unwrap_err()
                .to_string()
                .contains("floor copy4k all")
        );
    }

    #[test]
    fn boot_refuses_a_log_at_another_depth_or_none() {
        assert_eq!(
            boot(2, Paging::Five, &log_with(""))
                .unwrap_err()
                .to_string(),
            "asked for 5-level paging, the kernel reports 4-level"
        );
        let silent = log_with("").replace("# paging: 4-level", "# paging");
        assert!(
            boot(2, Paging::Four, &silent)
                .unwrap_err()
                .to_string()
                .contains("no `# paging:` line")
        );
        let five = log_with("").replace("4-level", "5-level");
        let (micro, exits) = boot(2, Paging::Five, &five).unwrap();
        assert!(micro.iter().all(|m| m.paging == Paging::Five));
        assert!(exits.iter().all(|e| e.paging == Paging::Five));
    }

    #[test]
    fn sweep_reads_the_tsv() {
        let tsv = "strategy\tcpus\ta\tb\tc\td\te\tf\tg\nreinsert\t4\t0\t2\t0\t1\t3\t1010\t1310\n";
        let rows = sweep(tsv).unwrap();
        assert_eq!(rows[0].cpus, 4);
        assert_eq!(rows[0].ipis, 3.0);
        assert_eq!(rows[0].machine_ns, 1310.0);
        assert!(sweep("header only\n").is_err());
    }
}
