// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The population benchmark: what guest_memfd_populate_bench printed in the
//! benchmark boots, as figures, a table, the targets and a plot.
//!
//! The program prints one `gmem-bench: populate workload=... config=...
//! round=...` line per run. A figure is one workload and configuration in
//! one boot: the median of its rounds' seconds and flushes, the splits of
//! all its rounds (6.12 never merges a split mapping, so a later round
//! mostly finds its mappings split already), and the direct-map sizes of
//! its first round (before, while the file lives, after it is gone).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::parse::{fields, median, num};
use super::plot;
use anyhow::{Context as _, Result, anyhow, bail};

/// What the program measures, in the order it reports them.
pub const WORKLOADS: [&str; 2] = ["fallocate", "touch"];
/// Without the flag, with the pool, on the single-page path.
pub const CONFIGS: [&str; 3] = ["off", "pool", "page"];
/// The boots that run it (4-level paging), as the issue asks.
pub const SMPS: [u32; 2] = [2, 8];

/// One workload and configuration in one boot.
#[derive(Clone, Debug, PartialEq)]
pub struct Populate {
    pub smp: u32,
    pub workload: String,
    pub config: String,
    pub mib: u64,
    pub rounds: usize,
    pub median_s: f64,
    pub flushes: f64,
    pub fallbacks: f64,
    /// Summed over the rounds.
    pub l2_splits: f64,
    pub l3_splits: f64,
    /// DirectMap4k, 2M and 1G (kB), each before / during / after, of the
    /// first round.
    pub direct_map: [[u64; 3]; 3],
}

fn triple(kv: &BTreeMap<&str, &str>, k: &str, line: &str) -> Result<[u64; 3]> {
    let v: Vec<u64> = kv
        .get(k)
        .map(|v| v.split('/').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default();
    v.try_into()
        .map_err(|_| anyhow!("no before/during/after {k}= in `{line}`"))
}

/// Every figure of a boot on `smp` CPUs; fails on an error line, or when a
/// workload or configuration is missing.
pub fn parse(smp: u32, log: &str) -> Result<Vec<Populate>> {
    let mut runs: BTreeMap<(String, String), Vec<Populate>> = BTreeMap::new();
    for raw in log.lines() {
        let Some((_, rest)) = raw
            .trim_end_matches('\r')
            .split_once("gmem-bench: populate ")
        else {
            continue;
        };
        let (kv, _) = fields(rest);
        if kv.contains_key("error") {
            bail!("the population benchmark said: {}", rest.trim());
        }
        let (Some(w), Some(c)) = (kv.get("workload"), kv.get("config")) else {
            continue; // the header line
        };
        runs.entry((w.to_string(), c.to_string()))
            .or_default()
            .push(Populate {
                smp,
                workload: w.to_string(),
                config: c.to_string(),
                mib: num(&kv, "mib", rest)?,
                rounds: 1,
                median_s: num(&kv, "seconds", rest)?,
                flushes: num(&kv, "flushes", rest)?,
                fallbacks: num(&kv, "fallbacks", rest)?,
                l2_splits: num(&kv, "l2_splits", rest)?,
                l3_splits: num(&kv, "l3_splits", rest)?,
                direct_map: [
                    triple(&kv, "dm4k", rest)?,
                    triple(&kv, "dm2m", rest)?,
                    triple(&kv, "dm1g", rest)?,
                ],
            });
    }
    let mut out = Vec::new();
    for w in WORKLOADS {
        for c in CONFIGS {
            let rounds = runs
                .get(&(w.to_string(), c.to_string()))
                .with_context(|| format!("no population figure for {w} {c} at {smp} CPUs"))?;
            let med =
                |f: fn(&Populate) -> f64| median(&mut rounds.iter().map(f).collect::<Vec<_>>());
            let sum = |f: fn(&Populate) -> f64| rounds.iter().map(f).sum();
            out.push(Populate {
                rounds: rounds.len(),
                median_s: med(|p| p.median_s),
                flushes: med(|p| p.flushes),
                fallbacks: med(|p| p.fallbacks),
                l2_splits: sum(|p| p.l2_splits),
                l3_splits: sum(|p| p.l3_splits),
                ..rounds[0].clone()
            });
        }
    }
    Ok(out)
}

fn find<'a>(p: &'a [Populate], smp: u32, w: &str, c: &str) -> Option<&'a Populate> {
    p.iter()
        .find(|x| x.smp == smp && x.workload == w && x.config == c)
}

/// The MiB one round of `workload` populates (0 without a figure), for
/// the results page's headings.
pub fn mib(p: &[Populate], workload: &str) -> u64 {
    p.iter()
        .find(|x| x.workload == workload)
        .map_or(0, |x| x.mib)
}

/// The table of one workload: a row per boot and configuration.
pub fn table(p: &[Populate], workload: &str) -> String {
    let mut t = String::from(
        "| CPUs | config | rounds | median s | ÷ off | flushes | per 2 MiB | 2M splits, all rounds | 1G splits, all rounds \
         | DirectMap4k kB before / during / after | DirectMap2M kB before / during / after |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n",
    );
    for smp in SMPS {
        let off = find(p, smp, workload, "off").map(|x| x.median_s);
        for c in CONFIGS {
            let Some(x) = find(p, smp, workload, c) else {
                continue;
            };
            let [k4, m2, _] = x.direct_map;
            writeln!(
                t,
                "| {smp} | {c} | {} | {:.3} | {:.2} | {:.0} | {:.2} | {:.0} | {:.0} | {} / {} / {} | {} / {} / {} |",
                x.rounds,
                x.median_s,
                off.map_or(f64::NAN, |o| x.median_s / o),
                x.flushes,
                x.flushes / (x.mib as f64 / 2.0),
                x.l2_splits,
                x.l3_splits,
                k4[0],
                k4[1],
                k4[2],
                m2[0],
                m2[1],
                m2[2],
            )
            .unwrap();
        }
    }
    t
}

/// The targets for the pool, per boot and workload: met or not,
/// with the figure.
pub fn targets(p: &[Populate]) -> String {
    let mut t =
        String::from("| CPUs | workload | target | figure | met |\n|---:|---|---|---:|---|\n");
    for smp in SMPS {
        for w in WORKLOADS {
            let (Some(pool), Some(off)) = (find(p, smp, w, "pool"), find(p, smp, w, "off")) else {
                continue;
            };
            let per_2m = pool.flushes / (pool.mib as f64 / 2.0);
            let ratio = pool.median_s / off.median_s;
            let [_, m2, _] = pool.direct_map;
            let rows = [
                (
                    "≤ 1 kernel-wide flush per 2 MiB",
                    format!("{per_2m:.2}"),
                    per_2m <= 1.0,
                ),
                (
                    "0 splits of a 2M mapping",
                    format!("{:.0}", pool.l2_splits),
                    pool.l2_splits == 0.0,
                ),
                (
                    "DirectMap2M back after close",
                    format!("{} → {} kB", m2[0], m2[2]),
                    m2[2] == m2[0],
                ),
                (
                    "time ≤ 1.2 × flag off",
                    format!("{ratio:.2} ×"),
                    ratio <= 1.2,
                ),
            ];
            for (what, figure, met) in rows {
                writeln!(
                    t,
                    "| {smp} | {w} | {what} | {figure} | {} |",
                    if met { "yes" } else { "**no**" }
                )
                .unwrap();
            }
        }
    }
    t
}

/// Time relative to the flag off, per CPU count.
pub fn plot(p: &[Populate]) -> String {
    let mut series = Vec::new();
    for w in WORKLOADS {
        for c in ["pool", "page"] {
            series.push(plot::Series {
                name: format!("{w}, {c}"),
                points: SMPS
                    .iter()
                    .filter_map(|&smp| {
                        let x = find(p, smp, w, c)?;
                        let off = find(p, smp, w, "off")?;
                        Some((smp as f64, x.median_s / off.median_s))
                    })
                    .collect(),
            });
        }
    }
    plot::svg(
        &plot::Chart {
            title: "population with the flag, time ÷ flag off (QEMU TCG, 4-level paging, median)",
            x_label: "CPUs",
            y_label: "time ÷ flag off",
            x_log2: true,
            y_log10: true,
        },
        &series,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(w: &str, c: &str, round: u32, secs: f64, flushes: u32) -> String {
        format!(
            "gmem-bench: populate workload={w} config={c} round={round} mib=256 seconds={secs} \
             flushes={flushes} fallbacks=0 l2_splits=0 l3_splits=1 dm4k=10/10/10 dm2m=20/20/20 dm1g=0/0/0\n"
        )
    }

    #[test]
    fn parses_medians_and_refuses_gaps_and_errors() {
        let mut log =
            String::from("gmem-bench: populate cpus=2 file_mib=256 guest_mib=64 rounds=3\n");
        for w in WORKLOADS {
            for c in CONFIGS {
                for (r, s) in [1.0, 3.0, 2.0].iter().enumerate() {
                    log.push_str(&line(w, c, r as u32, *s, 128));
                }
            }
        }
        let p = parse(2, &log).unwrap();
        assert_eq!(p.len(), 6);
        assert!(
            p.iter()
                .all(|x| x.median_s == 2.0 && x.rounds == 3 && x.flushes == 128.0)
        );
        assert_eq!(p[0].direct_map[1], [20, 20, 20]);
        let t = targets(&p);
        assert!(
            t.contains("| 2 | fallocate | ≤ 1 kernel-wide flush per 2 MiB | 1.00 | yes |"),
            "{t}"
        );

        let missing: String = log
            .lines()
            .filter(|l| !l.contains("config=page"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(parse(2, &missing).unwrap_err().to_string().contains("page"));
        let failed = format!(
            "{log}gmem-bench: populate workload=touch config=pool round=9 error=\"KVM_RUN: x\"\n"
        );
        assert!(
            parse(2, &failed)
                .unwrap_err()
                .to_string()
                .contains("KVM_RUN")
        );
    }
}
