// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `merge_config.sh`, then `allnoconfig`, then a check: Kconfig silently drops unmet symbols.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Cache;
use super::ktap::read_log;
use super::run::{logged, output};
use anyhow::{Context as _, Result, ensure};

/// `kernel-patch/configs/<name>.config`, or the `--<name>-config` file.
pub fn fragment(name: &str) -> PathBuf {
    let s = crate::settings();
    let chosen = match name {
        "boot" => &s.boot_config,
        "debug" => &s.debug_config,
        "nomitig" => &s.nomitig_config,
        _ => &None,
    };
    let default = || crate::root().join(format!("kernel-patch/configs/{name}.config"));
    chosen.clone().unwrap_or_else(default)
}

/// `merge_config.sh -m <frags>` (later values win) into `<out>/fragment.config`.
fn merge(tree: &Path, frags: &[PathBuf], out: &Path) -> Result<String> {
    fs::create_dir_all(out)?;
    let (mut merge, script) = (Command::new("sh"), "scripts/kconfig/merge_config.sh");
    merge.arg(tree.join(script)).arg("-m");
    for frag in frags {
        // The script would create a missing base file, empty.
        let frag = fs::canonicalize(frag).with_context(|| format!("read {}", frag.display()))?;
        merge.arg(frag);
    }
    let merged = out.join("fragment.config");
    let said = output(merge.current_dir(out).env("KCONFIG_CONFIG", &merged))?;
    said.lines().for_each(|l| println!("    | {l}"));
    read_log(&merged)
}

/// Configures and checks `<cache>/build/<name>` (`debug`: `boot` + `debug`).
pub fn configure(cache: &Cache, tree: &Path, name: &str) -> Result<PathBuf> {
    let base = (name == "debug").then(|| fragment("boot"));
    let frags: Vec<_> = base.into_iter().chain([fragment(name)]).collect();
    layered(cache, tree, name, &frags)
}

/// Configures `<cache>/build/<name>` from `frags` (later values win), and checks it.
pub fn layered(cache: &Cache, tree: &Path, name: &str, frags: &[PathBuf]) -> Result<PathBuf> {
    let out = cache.build(name);
    let text = merge(tree, frags, &out)?;
    // Kconfig leaves an unchanged .config alone (no relink).
    let config = allnoconfig(cache, tree, name, &[])?;
    let (wanted, frag) = (parse_fragment(&text), out.join("fragment.config"));
    let missing = missing(&wanted, &config).join(", ");
    let why = "did not take (unmet dependencies or unknown symbols)";
    ensure!(missing.is_empty(), "{} {why}: {missing}", frag.display());
    println!("    all {} fragment options set as asked", wanted.len());
    Ok(out)
}

/// The unchecked `.config` of the boot fragment, `extra` make arguments added.
pub fn configure_with(cache: &Cache, tree: &Path, name: &str, extra: &[String]) -> Result<String> {
    merge(tree, &[fragment("boot")], &cache.build(name))?;
    allnoconfig(cache, tree, name, extra)
}

/// `make KCONFIG_ALLCONFIG=<out>/fragment.config allnoconfig`: the `.config`.
fn allnoconfig(cache: &Cache, tree: &Path, name: &str, extra: &[String]) -> Result<String> {
    let (out, log) = (cache.build(name), cache.log(&format!("{name}-config")));
    let frag = out.join("fragment.config");
    let mut make = super::run::make(tree);
    make.arg(format!("O={}", out.display()));
    make.arg(format!("KCONFIG_ALLCONFIG={}", frag.display()));
    logged(make.args(extra).arg("allnoconfig"), &log, None)?;
    read_log(&out.join(".config"))
}

/// `(CONFIG_X, v)` for `CONFIG_X=v`, `(CONFIG_X, "n")` for `# ... is not set`.
fn parse_fragment(text: &str) -> Vec<(&str, &str)> {
    fn parse(l: &str) -> Option<(&str, &str)> {
        let unset = || Some((l.strip_prefix("# ")?.strip_suffix(" is not set")?, "n"));
        let line = l.split_once('=').or_else(unset);
        line.filter(|(k, _)| k.starts_with("CONFIG_"))
    }
    text.lines().map(str::trim).filter_map(parse).collect()
}

/// The wishes .config does not meet (`n` is met by absence too).
fn missing(wanted: &[(&str, &str)], config: &str) -> Vec<String> {
    let have: HashMap<_, _> = parse_fragment(config).into_iter().collect();
    let got = |k: &str| have.get(k).copied().unwrap_or("n");
    let unmet = wanted.iter().filter(|&&(k, want)| got(k) != want);
    let unset = |v| if v == "n" { "unset" } else { v };
    let said = |&(k, want): &(&str, &str)| format!("{k}={want} (got {})", unset(got(k)));
    unmet.map(said).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_dropped_options() {
        let frag = "# comment\nCONFIG_A=y\nCONFIG_NR=8192\n# CONFIG_B is not set\nCONFIG_C=n\n\nCONFIG_D=y\n";
        let wanted = parse_fragment(frag);
        assert_eq!((wanted.len(), wanted[2]), (5, ("CONFIG_B", "n")));
        let config = "CONFIG_A=y\nCONFIG_NR=512\n# CONFIG_C is not set\nCONFIG_B=y\n";
        let want = "CONFIG_NR=8192 (got 512), CONFIG_B=n (got y), CONFIG_D=y (got unset)";
        assert_eq!(missing(&wanted, config).join(", "), want);
    }

    /// The tree's merge_config.sh, as `cargo xtask boot-test` prepared it.
    #[test]
    fn a_later_layer_overrides_an_earlier_one() {
        let tree = Cache::from_env().linux();
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let (a, b) = (dir.join("a.config"), dir.join("b.config"));
        fs::write(&a, "CONFIG_A=y\nCONFIG_B=y\n").unwrap();
        fs::write(&b, "# CONFIG_A is not set\nCONFIG_C=m").unwrap();
        let text = merge(&tree, &[a.clone(), b], dir).unwrap();
        let want = [("CONFIG_B", "y"), ("CONFIG_A", "n"), ("CONFIG_C", "m")];
        assert_eq!(parse_fragment(&text), want);
        let gone = merge(&tree, &[a, dir.join("gone.config")], dir).unwrap_err();
        assert!(format!("{gone:#}").contains("gone.config"), "{gone:#}");
    }
}
