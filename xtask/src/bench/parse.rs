// SPDX-License-Identifier: GPL-2.0 OR MIT
//! What the benchmark boots printed, a `gmem-bench: <kind> k=v ...` line per round of each
//! figure, filed into rows as its kind's [`Group`] says; and the simulator sweep's table.

use std::{collections::BTreeMap, str::FromStr};

use crate::kernel::Paging;
use anyhow::{Context as _, Result, ensure};

pub const HOWS: [&str; 7] = [
    "floor", "window", "shared", "kmap", "tempmm", "reinsert", "direct",
];
pub const TOUCHES: [&str; 2] = ["read64", "copy4k"];
pub const CPU_SETS: [&str; 2] = ["one", "all"];
/// The end-to-end loop's configurations.
pub const CONFIGS: [&str; 5] = ["shared", "flag-off", "window", "shared-window", "reinsert"];
/// The population benchmark's workloads and configurations (flag off, pool, single-page path).
pub const WORKLOADS: [&str; 2] = ["fallocate", "touch"];
pub const POPULATE: [&str; 3] = ["off", "pool", "page"];

/// One figure's fields: its first round's, then the aggregated ones and `rounds` (as Rust prints).
pub type Row = BTreeMap<String, String>;
/// A log's figures, a row per group, named `<kind> <key value>...`: `micro window read64 all`.
pub type Rows = BTreeMap<String, Row>;

/// How one kind's lines become rows.
pub struct Group {
    /// The words (without `=`) each line has: its kind first.
    words: &'static [&'static str],
    /// The fields naming a row, each with the values it must take.
    keys: &'static [(&'static str, &'static [&'static str])],
    /// The fields taken as the median over the rounds, and as their sum.
    medians: &'static [&'static str],
    sums: &'static [&'static str],
    /// Other fields each round must have: so many `/`-separated numbers.
    numbers: &'static [(&'static str, usize)],
}

/// The kernel microbenchmark: its `all` lines (every CPU's samples).
pub const MICRO: Group = Group {
    words: &["micro", "all"],
    keys: &[("how", &HOWS), ("touch", &TOUCHES), ("cpus", &CPU_SETS)],
    medians: &["median_ns", "p99_ns"],
    sums: &[],
    numbers: &[],
};
/// The counting boot's instructions per operation, one CPU looping.
pub const COUNT: Group = Group {
    keys: &[("how", &HOWS), ("touch", &TOUCHES), ("cpus", &["one"])],
    medians: &["median_ticks"],
    ..MICRO
};
/// The end-to-end loop: exits per second, counts summed over the rounds.
pub const EXITS: Group = Group {
    words: &["exits"],
    keys: &[("config", &CONFIGS)],
    medians: &["exits_per_sec"],
    sums: &["stores", "window_maps", "reinsertions", "remote_flushes"],
    numbers: &[],
};
/// The population benchmark: splits summed (6.12 never merges a split mapping: later rounds
/// find them split), the direct-map sizes (before / during / after) of the first round.
pub const POPULATION: Group = Group {
    words: &["populate"],
    keys: &[("workload", &WORKLOADS), ("config", &POPULATE)],
    medians: &["seconds", "flushes", "fallbacks"],
    sums: &["l2_splits", "l3_splits"],
    numbers: &[("mib", 1), ("dm4k", 3), ("dm2m", 3), ("dm1g", 3)],
};

/// `g`'s rows from `log`; fails on any `error=`, a number missing, or a row without a round.
pub fn group(g: &Group, log: &str) -> Result<Rows> {
    let kind = g.words[0];
    let mut rounds: BTreeMap<String, Vec<BTreeMap<&str, &str>>> = BTreeMap::new();
    for raw in log.lines() {
        let Some((_, line)) = raw.trim_end_matches('\r').split_once("gmem-bench: ") else {
            continue;
        };
        let (pairs, words): (Vec<&str>, Vec<&str>) =
            line.split_whitespace().partition(|w| w.contains('='));
        let pairs = pairs.iter().filter_map(|w| w.split_once('='));
        let kv: BTreeMap<_, _> = pairs.map(|(k, v)| (k, v.trim_matches('"'))).collect();
        ensure!(!kv.contains_key("error"), "the guest said: {}", line.trim());
        if words.first() != Some(&kind) || !g.words.iter().all(|w| words.contains(w)) {
            continue;
        }
        let name = |(k, shown): &(_, &[&str])| kv.get(k).filter(|v| shown.contains(v)).copied();
        let Some(names) = g.keys.iter().map(name).collect::<Option<Vec<&str>>>() else {
            continue; // a header line, or a figure no table shows
        };
        let ones = g.medians.iter().chain(g.sums).map(|k| (*k, 1));
        for (k, n) in ones.chain(g.numbers.iter().copied()) {
            let parse = |v: &&str| v.split('/').map(str::parse::<f64>).collect();
            let numbers: Vec<_> = kv.get(k).map_or(vec![], parse);
            let ok = numbers.len() == n && numbers.iter().all(Result::is_ok);
            ensure!(ok, "no number {k}= in `{line}`");
        }
        let name = format!("{} {}", kind, names.join(" "));
        rounds.entry(name).or_default().push(kv);
    }
    let mut names = vec![kind.to_string()];
    for (_, values) in g.keys {
        names = (names.iter())
            .flat_map(|n| values.iter().map(move |v| format!("{n} {v}")))
            .collect();
    }
    let row = |name: String| {
        let r = (rounds.get(&name))
            .with_context(|| format!("no `{}` result in the log", &name[kind.len() + 1..]))?;
        let text = |(k, v): (&&str, &&str)| (k.to_string(), v.to_string());
        let mut row: Row = r[0].iter().map(text).collect();
        for k in g.medians.iter().chain(g.sums) {
            let all = r.iter().map(|kv| kv[k].parse().unwrap_or(f64::NAN));
            let v = if g.sums.contains(k) {
                all.sum()
            } else {
                median(all.collect())
            };
            row.insert(k.to_string(), v.to_string());
        }
        row.insert("rounds".into(), r.len().to_string());
        Ok((name, row))
    };
    names.into_iter().map(row).collect()
}

/// The median: of an odd count the middle value (its double halved, exactly).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0
}

/// Every figure the benchmark boots and the counting boot measured.
#[derive(Default)]
pub struct Figures {
    /// Each boot's CPUs, depth and rows, in boot order.
    pub boots: Vec<(u32, Paging, Rows)>,
    /// The counting boot's [`COUNT`] rows.
    pub count: Rows,
}

impl Figures {
    /// Adds a boot's figures, and returns how many; fails as [`group`] does, and when its log
    /// reports another depth than `paging` (or none).
    pub fn add(&mut self, smp: u32, paging: Paging, log: &str) -> Result<usize> {
        crate::kernel::check_paging(log, paging)?;
        let mut rows = group(&MICRO, log)?;
        rows.extend(group(&EXITS, log)?);
        self.boots.push((smp, paging, rows));
        let rows = &mut self.boots.last_mut().unwrap().2;
        if super::runs_populate(smp, paging) {
            rows.extend(group(&POPULATION, log)?);
        }
        Ok(rows.len())
    }

    /// Field `field` of row `key` of the boot on `smp` CPUs at `paging`.
    pub fn get<T: FromStr>(&self, paging: Paging, smp: u32, key: &str, field: &str) -> Option<T> {
        let (.., rows) = self.boots.iter().find(|b| b.0 == smp && b.1 == paging)?;
        rows.get(key)?.get(field)?.parse().ok()
    }

    /// The median ns of `how touch cpus` in that boot.
    pub fn ns(&self, paging: Paging, smp: u32, how: &str, touch: &str, cpus: &str) -> Option<f64> {
        let key = format!("micro {how} {touch} {cpus}");
        self.get(paging, smp, &key, "median_ns")
    }

    /// The instructions of one `how` and `touch`, counted.
    pub fn insns(&self, how: &str, touch: &str) -> Option<f64> {
        let row = self.count.get(&format!("micro {how} {touch} one"))?;
        row.get("median_ticks")?.parse().ok()
    }

    /// The CPU counts of the boots at `paging`.
    pub fn smps(&self, paging: Paging) -> Vec<u32> {
        let boots = self.boots.iter().filter(|b| b.1 == paging);
        boots.map(|b| b.0).collect()
    }
}

/// A line of the simulator sweep (`--tsv`): strategy, CPUs, and its seven figures (the
/// columns of [`super::tables::sweep`]).
pub type Sweep = (String, u32, Vec<f64>);

pub fn sweep(tsv: &str) -> Result<Vec<Sweep>> {
    let mut rows = Vec::new();
    for line in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let n: Option<Vec<f64>> = (1..9).map(|i| f.get(i)?.parse().ok()).collect();
        let n = n.with_context(|| format!("sweep: a bad column in `{line}`"))?;
        rows.push((f[0].to_string(), n[0] as u32, n[1..].to_vec()));
    }
    ensure!(!rows.is_empty(), "sweep printed no rows");
    Ok(rows)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn fixture(name: &str) -> String {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/bench/fixtures");
        std::fs::read_to_string(format!("{dir}/{name}")).unwrap()
    }

    fn fields(row: &Row, keys: &[&str]) -> String {
        keys.iter().map(|k| &*row[*k]).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn rows_take_the_median_and_sum_of_their_rounds() {
        let log = fixture("bench-smp2-4level.log");
        let (micro, exits) = (group(&MICRO, &log).unwrap(), group(&EXITS, &log).unwrap());
        let (w, r) = (&micro["micro window read64 all"], &exits["exits reinsert"]);
        assert_eq!(fields(w, &["median_ns", "p99_ns", "rounds"]), "1098 2945 3");
        let counts = ["stores", "remote_flushes", "exits_per_sec"];
        assert_eq!(fields(r, &counts), "15000 15000 5640.9");
        let p = &group(&POPULATION, &log).unwrap()["populate touch page"];
        let dm2m = "1040384/974848/974848";
        assert_eq!(fields(p, &["l2_splits", "dm2m"]), format!("38 {dm2m}"));
        assert!(sweep("header only\n").is_err());
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn a_bad_log_fails() {
        let cpus = "gmem-bench: cpus=";
        let exits = format!("gmem-bench: exits config=window error=\"KVM_RUN: Bad\"\n{cpus}");
        let populate = format!("gmem-bench: populate config=pool error=\"KVM_RUN: x\"\n{cpus}");
        for (g, log, from, to, error) in [
            (&EXITS, "smp2", cpus, &*exits, "said: exits config=window"),
            (&MICRO, "smp2", "=all all", "=all x", "`floor read64 all`"),
            (&EXITS, "smp1", "exits_per_sec=", "x=", "exits_per_sec="),
            (&COUNT, "icount-smp1", "how=shared", "how=x", "`shared"),
            (&COUNT, "icount-smp1", "median_ticks=4", "x=4", "ticks="),
            (&POPULATION, "smp8", "config=page", "config=x", "page`"),
            (&POPULATION, "smp8", cpus, &populate, "KVM_RUN: x"),
            (&POPULATION, "smp8", "dm2m=1040384/", "dm2m=1+", "dm2m="),
        ] {
            let log = fixture(&format!("bench-{log}-4level.log")).replace(from, to);
            let e = group(g, &log).unwrap_err().to_string();
            assert!(e.contains(error), "{e}");
        }
        let mut f = Figures::default();
        let e = f
            .add(2, Paging::Five, &fixture("bench-smp2-4level.log"))
            .unwrap_err();
        let want = "asked for 5-level paging, the kernel reports 4-level";
        assert_eq!(e.to_string(), want);
        assert!(f.boots.is_empty(), "a boot at another depth adds nothing");
    }
}
