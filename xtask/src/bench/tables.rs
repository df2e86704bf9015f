// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The results page's tables and the verdicts on the targets.

use super::parse::{CONFIGS, Figures, HOWS, POPULATE, Sweep, WORKLOADS};
use super::{DEPTH_SMP, POPULATE_SMPS};
use crate::kernel::Paging::{self, Five, Four};
use std::str::FromStr;

/// What a strategy is: its line in the results page's list of strategies.
pub fn describe(how: &str) -> &'static str {
    let line = |l: &'static str| l.strip_prefix("- `")?.strip_prefix(how);
    let line = |l| line(l)?.strip_prefix("`: ");
    super::TEMPLATE.lines().find_map(line).unwrap_or("?")
}

/// A Markdown table: `spec` its `|`-separated headers (`>` right-aligns), a row its cells.
pub fn table(spec: &str, rows: impl IntoIterator<Item = String>) -> String {
    let line = |cells: &str| format!("| {} |\n", cells.replace('|', " | "));
    let align = |c: &str| if c.starts_with('>') { "---:|" } else { "---|" };
    let rule: String = spec.split('|').map(align).collect();
    let mut t = line(&spec.replace('>', "")) + "|" + &rule + "\n";
    t.extend(rows.into_iter().map(|r| line(&r)));
    t
}

/// A target's figure and verdict cells.
fn verdict(figure: String, met: bool) -> String {
    format!("{figure}|{}", if met { "yes" } else { "**no**" })
}

/// A row per 4-level boot and strategy, with ratios to the window and the plain direct map.
pub fn micro(f: &Figures, touch: &str, cpus: &str) -> String {
    let mut rows = Vec::new();
    for smp in f.smps(Four) {
        let g = |how, k| f.get(Four, smp, &format!("micro {how} {touch} {cpus}"), k);
        let base = |how| g(how, "median_ns").unwrap_or(f64::NAN);
        for how in HOWS {
            let (Some(m), Some(p)) = (g(how, "median_ns"), g(how, "p99_ns")) else {
                continue;
            };
            let (w, d) = (m / base("window"), m / base("direct"));
            rows.push(format!("{smp}|{how}|{m:.0}|{p:.0}|{w:.2}|{d:.2}"));
        }
    }
    let spec = ">CPUs|strategy|>median ns|>p99 ns|>× window|>× direct map";
    table(spec, rows)
}

fn window_over_reinsert(f: &Figures, paging: Paging, smp: u32) -> Option<f64> {
    let rate = |c| f.get::<f64>(paging, smp, &format!("exits {c}"), "exits_per_sec");
    Some(rate("window")? / rate("reinsert")?)
}

/// Exits per second of the end-to-end loop, a row per 4-level boot.
pub fn exits(f: &Figures) -> String {
    let rows = f.smps(Four).into_iter().map(|smp| {
        let g = |c, k| f.get(Four, smp, &format!("exits {c}"), k);
        let g = |c, k| g(c, k).unwrap_or(f64::NAN);
        let per = |c, k| format!("{:.2}", g(c, k) / g(c, "stores"));
        let counts = ["window_maps", "reinsertions", "remote_flushes"];
        let per = |c| counts.map(|k| per(c, k)).join("/");
        let rates = CONFIGS.map(|c| format!("{:.0}|", g(c, "exits_per_sec")));
        let rates = rates.concat();
        let ratio = window_over_reinsert(f, Four, smp).unwrap_or(f64::NAN);
        let (w, r) = (per("window"), per("reinsert"));
        format!("{smp}|{rates}{ratio:.2}|window {w}, reinsert {r}")
    });
    let configs = CONFIGS.map(|c| format!(">{c} exits/s|")).concat();
    let per = "window maps / reinsertions / remote flushes per exit";
    table(&format!(">CPUs|{configs}>window ÷ reinsert|>{per}"), rows)
}

/// `| what | 4-level | 5-level | 5-level ÷ 4-level |`, a row per figure measured at both
/// depths (name, values, decimals); a sentence when there is none (the 5-level boot failed).
fn depth(what: &str, unit: &str, rows: impl Iterator<Item = Depth>) -> String {
    let rows: Vec<String> = (rows.filter_map(|(name, [a, b], d)| Some((name, a?, b?, d))))
        .map(|(name, a, b, d)| format!("{name}|{a:.d$}|{b:.d$}|{:.2}", b / a))
        .collect();
    if rows.is_empty() {
        return "No figures at both paging depths.\n".into();
    }
    let spec = format!("{what}|>4-level{unit}|>5-level{unit}|>5-level ÷ 4-level");
    table(&spec, rows)
}
type Depth = (String, [Option<f64>; 2], usize);

/// At [`DEPTH_SMP`] CPUs, each strategy's median for one touch and CPU set.
pub fn micro_depth(f: &Figures, touch: &str, cpus: &str) -> String {
    let ns = |how| [Four, Five].map(|p| f.ns(p, DEPTH_SMP, how, touch, cpus));
    let rows = HOWS.into_iter().map(|h| (h.into(), ns(h), 0));
    depth("strategy", " median ns", rows)
}

/// At [`DEPTH_SMP`] CPUs, each configuration's exits per second, and window ÷ re-insertion.
pub fn exits_depth(f: &Figures) -> String {
    let rate = |p, c| f.get(p, DEPTH_SMP, &format!("exits {c}"), "exits_per_sec");
    let rates = CONFIGS.map(|c| (format!("{c} exits/s"), [Four, Five].map(|p| rate(p, c)), 0));
    let ratio = [Four, Five].map(|p| window_over_reinsert(f, p, DEPTH_SMP));
    let ratio = ("window ÷ reinsert".into(), ratio, 2);
    depth("figure", "", rates.into_iter().chain([ratio]))
}

/// The simulator sweep: counts per access and the model's estimate.
pub fn sweep(s: &[Sweep]) -> String {
    let mut s: Vec<&Sweep> = s.iter().collect();
    s.sort_by_key(|r| (r.1, r.0 != "window"));
    let rows = s.iter().map(|(strategy, cpus, n)| {
        let counts = n[..5].iter().map(|x| format!("{x}|")).collect::<String>();
        format!("{cpus}|{strategy}|{counts}{:.0}|{:.0}", n[5], n[6])
    });
    let spec = ">CPUs|strategy|>slot PTE writes|>direct-map writes|>local flushes|\
        >kernel-wide flushes|>IPIs|>model: initiator ns|>model: CPU time ns, all CPUs";
    table(spec, rows)
}

/// The targets, on read64 (KVM's accesses are small), copy4k and instruction counts.
pub fn targets(f: &Figures) -> String {
    // `a` over `b` (or `a` alone), per 4-level boot.
    let per_boot = |a, b: Option<&str>, touch, cpus| -> Vec<(u32, f64)> {
        let ns = |s, how| f.ns(Four, s, how, touch, cpus);
        let r = |s| Some(ns(s, a)? / b.map_or(Some(1.0), |b| ns(s, b))?);
        let smps = f.smps(Four).into_iter();
        smps.filter_map(|s| Some((s, r(s)?))).collect()
    };
    let worst = |r: &[(u32, f64)]| r.iter().map(|x| x.1).fold(0.0, f64::max);
    let at_most = |r: &[_], max| verdict(list(r, "×"), !r.is_empty() && worst(r) <= max);
    // Largest over smallest within 10 %.
    let flat = |figure, r: &[(u32, f64)]| {
        let spread = worst(r) / r.iter().map(|x| x.1).fold(f64::INFINITY, f64::min);
        let ok = r.len() >= 2 && spread <= 1.10;
        verdict(format!("{figure}; max ÷ min = {spread:.2}"), ok)
    };
    let mut rows = Vec::new();
    for cpus in ["one", "all"] {
        let r = per_boot("window", Some("shared"), "read64", cpus);
        let what = format!("private window ≤ 1.2 × shared window (read64, {cpus}, every boot)");
        rows.push(format!("{what}|{}", at_most(&r, 1.2)));
    }
    for touch in ["read64", "copy4k"] {
        let r = per_boot("window", Some("floor"), touch, "one");
        let what = format!("window ≤ 1.3 × raw floor ({touch}, one CPU looping, every boot)");
        rows.push(format!("{what}|{}", at_most(&r, 1.3)));
    }
    for cpus in ["all", "one"] {
        let gap = per_boot("reinsert", Some("window"), "read64", cpus);
        let at2 = gap.iter().find(|x| x.0 == 2).map(|x| x.1);
        let figure = at2.map_or("no 2-CPU boot".into(), |x| format!("{x:.1}×"));
        let what = format!("re-insertion ≥ 10 × window at 2 CPUs (read64, {cpus})|");
        rows.push(what + &verdict(figure, at2.is_some_and(|x| x >= 10.0)));
        let from2: Vec<f64> = gap.iter().filter(|x| x.0 >= 2).map(|x| x.1).collect();
        let grows = from2.len() >= 2 && from2.windows(2).all(|w| w[1] > w[0]);
        let what = format!("that gap grows with the CPU count (read64, {cpus})|");
        rows.push(what + &verdict(list(&gap, "×"), grows));
    }
    // The emulator's speed changes from boot to boot; the ratio to the same boot's floor does not.
    let r = per_boot("window", Some("floor"), "read64", "one");
    let what = "window ÷ raw floor (same boot) flat within 10 % from 1 to 8 CPUs (read64, one)";
    rows.push(format!("{what}|{}", flat(list(&r, "×"), &r)));
    for cpus in ["one", "all"] {
        let w = per_boot("window", None, "read64", cpus);
        let what = format!("window flat within 10 % from 1 to 8 CPUs (read64, {cpus})");
        rows.push(format!("{what}|{}", flat(list(&w, "") + " ns", &w)));
    }
    // Within 100 instructions of the floor: KVM's accessors (`window`, `shared`), `kmap` itself.
    let floor = f.insns("floor", "read64");
    for how in ["window", "shared", "kmap"] {
        let over = f.insns(how, "read64").zip(floor).map(|(x, f)| x - f);
        let what = format!("{how} ≤ floor + 100 instructions per map + unmap (read64, counted)|");
        let figure = over.map_or("not counted".into(), |o| format!("{o:+.0}"));
        rows.push(what + &verdict(figure, over.is_some_and(|o| o <= 100.0)));
    }
    table("target|measured|met", rows)
}

/// `1 CPUs: 1.05×, 2 CPUs: ...`; without a unit, in whole numbers.
fn list(v: &[(u32, f64)], unit: &str) -> String {
    let d = if unit.is_empty() { 0 } else { 2 };
    let one = |(s, x): &(u32, f64)| format!("{s} CPUs: {x:.d$}{unit}");
    v.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// The instruction model's assumptions (the results page tells them); the CPU counts it is for.
pub const MODEL: [(&str, f64); 4] = [
    ("model_insns_per_ns", 3.0),
    ("model_invlpg_ns", 100.0),
    ("model_ipi_ns", 1000.0),
    ("model_cr3_ns", 100.0),
];
const MODEL_CPUS: [u32; 3] = [2, 8, 64];

/// Model: what one operation of `how` costs a CPU among `cpus`, in ns.
fn model_ns(how: &str, insns: f64, cpus: u32) -> f64 {
    let [per_ns, invlpg, ipi, cr3] = MODEL.map(|m| m.1);
    let events = match how {
        "floor" | "window" | "shared" | "kmap" => invlpg,
        "tempmm" => 2.0 * cr3,
        "reinsert" => invlpg + f64::from(cpus - 1) * ipi,
        _ => 0.0,
    };
    insns / per_ns + events
}

/// The counts, each over the floor, and the hardware estimate (read64).
pub fn instructions(f: &Figures) -> String {
    let rows = HOWS.iter().filter_map(|how| {
        let (r, k) = (f.insns(how, "read64")?, f.insns(how, "copy4k")?);
        let over = |x: f64, touch| f.insns("floor", touch).map_or(f64::NAN, |f| x - f);
        let (or, ok) = (over(r, "read64"), over(k, "copy4k"));
        let model = MODEL_CPUS.map(|n| format!("|{:.0}", model_ns(how, r, n)));
        let model = model.concat();
        Some(format!("{how}|{r:.0}|{or:+.0}|{k:.0}|{ok:+.0}{model}"))
    });
    let model = MODEL_CPUS.map(|n| format!("|>model ns, {n} CPUs")).concat();
    let spec = ">read64 instructions|>− floor|>copy4k instructions|>− floor";
    table(&format!("strategy|{spec}{model}"), rows)
}

/// Field `k` of population figure `w c` of the boot on `smp` CPUs.
fn pop<T: FromStr>(f: &Figures, smp: u32, w: &str, c: &str, k: &str) -> Option<T> {
    f.get(Four, smp, &format!("populate {w} {c}"), k)
}

/// The MiB a round of `workload` populates (0 without a figure).
pub fn mib(f: &Figures, w: &str) -> f64 {
    let mib = |s| pop(f, s, w, "off", "mib");
    POPULATE_SMPS.into_iter().find_map(mib).unwrap_or(0.0)
}

/// Seconds of `c` over seconds of the flag off, if both were measured.
pub fn pop_ratio(f: &Figures, smp: u32, w: &str, c: &str) -> Option<f64> {
    let seconds = |c| pop::<f64>(f, smp, w, c, "seconds");
    Some(seconds(c)? / seconds("off")?)
}

/// The table of one workload: a row per boot and configuration.
pub fn population(f: &Figures, w: &str) -> String {
    let mut rows = Vec::new();
    for smp in POPULATE_SMPS {
        for c in POPULATE {
            let Some(rounds) = pop::<u32>(f, smp, w, c, "rounds") else {
                continue;
            };
            let g = |k| pop(f, smp, w, c, k).unwrap_or(f64::NAN);
            let dm = |k| pop::<String>(f, smp, w, c, k).unwrap_or_default();
            let dm = |k| dm(k).replace('/', " / ");
            let ratio = pop_ratio(f, smp, w, c).unwrap_or(f64::NAN);
            let (s, fl, per_2m) = (g("seconds"), g("flushes"), g("flushes") / (g("mib") / 2.0));
            let splits = format!("{:.0}|{:.0}|{}", g("l2_splits"), g("l3_splits"), dm("dm4k"));
            let row = format!("{smp}|{c}|{rounds}|{s:.3}|{ratio:.2}|{fl:.0}");
            rows.push(format!("{row}|{per_2m:.2}|{splits}|{}", dm("dm2m")));
        }
    }
    let spec = ">CPUs|config|>rounds|>median s|>÷ off|>flushes|>per 2 MiB|>2M splits, all rounds|\
        >1G splits, all rounds|DirectMap4k kB before / during / after|\
        DirectMap2M kB before / during / after";
    table(spec, rows)
}

/// The targets for the pool, per boot and workload.
pub fn population_targets(f: &Figures) -> String {
    let mut rows = Vec::new();
    for smp in POPULATE_SMPS {
        for w in WORKLOADS {
            let Some(ratio) = pop_ratio(f, smp, w, "pool") else {
                continue;
            };
            let g = |k| pop(f, smp, w, "pool", k).unwrap_or(f64::NAN);
            let (per_2m, l2) = (g("flushes") / (g("mib") / 2.0), g("l2_splits"));
            let m2: String = pop(f, smp, w, "pool", "dm2m").unwrap_or_default();
            let m2: Vec<&str> = m2.split('/').collect();
            let (before, after) = (m2[0], m2[2]);
            let mut row = |what, figure: String, met| {
                rows.push(format!("{smp}|{w}|{what}|{}", verdict(figure, met)));
            };
            let (flushes, time) = (format!("{per_2m:.2}"), format!("{ratio:.2} ×"));
            row("≤ 1 kernel-wide flush per 2 MiB", flushes, per_2m <= 1.0);
            row("0 splits of a 2M mapping", format!("{l2:.0}"), l2 == 0.0);
            let back = format!("{before} → {after} kB");
            row("DirectMap2M back after close", back, after == before);
            row("time ≤ 1.2 × flag off", time, ratio <= 1.2);
        }
    }
    table(">CPUs|workload|target|>figure|met", rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_tables_hold_the_figures_measured_at_both_depths() {
        let a = ("a".into(), [Some(100.0), Some(125.0)], 0);
        let b = ("b".into(), [None, Some(1.0)], 0);
        let t = depth("x", " ns", [a, b].into_iter());
        let head = "| x | 4-level ns | 5-level ns | 5-level ÷ 4-level |\n|---|---:|---:|---:|\n";
        assert_eq!(t, format!("{head}| a | 100 | 125 | 1.25 |\n"));
        let none = depth("x", "", [].into_iter());
        assert_eq!(none, "No figures at both paging depths.\n");
    }
}
