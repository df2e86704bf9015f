// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Kernel configurations: a fragment in `kernel-patch/configs/<name>.config`
//! expanded with `make KCONFIG_ALLCONFIG=<fragment> allnoconfig` into
//! `<cache>/build/<name>/.config`, then checked: Kconfig silently drops any
//! symbol whose dependencies are unmet, so every line of the fragment must
//! be found in .config with its value.
//!
//! A configuration may be layered ([`layers`]): `debug` is the `boot`
//! fragment with `debug.config` on top, joined into one file in its build
//! directory, a later line for a symbol replacing an earlier one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Cache;
use super::run::{Ended, logged, output, tail};
use anyhow::{Context as _, Result, anyhow, bail};

/// The fragment for configuration `name`: `kernel-patch/configs/<name>.config`,
/// or the file `--boot-config`, `--debug-config` or `--nomitig-config`
/// names.
pub fn fragment(name: &str) -> PathBuf {
    let s = crate::settings();
    let chosen = match name {
        "boot" => &s.boot_config,
        "debug" => &s.debug_config,
        "nomitig" => &s.nomitig_config,
        _ => &None,
    };
    match chosen {
        Some(path) => {
            println!("    {name} fragment: {}", path.display());
            path.clone()
        }
        None => crate::root().join(format!("kernel-patch/configs/{name}.config")),
    }
}

/// The fragments configuration `name` is made of, in order: the `debug`
/// kernel is the `boot` kernel with the detectors on top.
pub fn layers(name: &str) -> Vec<&str> {
    match name {
        "debug" => vec!["boot", "debug"],
        _ => vec![name],
    }
}

/// The fragment of configuration `name` as one text, with the file
/// `allnoconfig` should read it from: the fragment itself, or for a layered
/// configuration the layers joined into `<out>/fragment.config`.
fn joined_fragment(name: &str, out: &Path) -> Result<(PathBuf, String)> {
    let mut text = String::new();
    let mut files = Vec::new();
    for layer in layers(name) {
        let frag = fragment(layer);
        let part = fs::read_to_string(&frag).with_context(|| format!("read {}", frag.display()))?;
        text.push_str(&part);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        files.push(frag);
    }
    if let [only] = &files[..] {
        return Ok((only.clone(), text));
    }
    let joined = out.join("fragment.config");
    fs::write(&joined, &text).with_context(|| format!("write {}", joined.display()))?;
    Ok((joined, text))
}

/// Configures `<cache>/build/<name>` from its fragment (or layers) and
/// checks the result; returns the build directory.
pub fn configure(cache: &Cache, tree: &Path, name: &str) -> Result<PathBuf> {
    let out = cache.build(name);
    fs::create_dir_all(&out)?;
    let (frag, text) = joined_fragment(name, &out)?;
    let wanted = last_wins(parse_fragment(&text));
    // Same fragment on the same tree: .config would come out the same, and
    // rewriting it costs a relink.
    let head = output(
        Command::new("git")
            .current_dir(tree)
            .args(["rev-parse", "HEAD"]),
    )?;
    let stamp_path = out.join(".gmem-kmap-fragment");
    let stamp = format!("{head}{text}");
    let dot_config = out.join(".config");
    if dot_config.exists() && fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        println!(
            "    unchanged: {} from this fragment on this tree",
            dot_config.display()
        );
    } else {
        let _ = fs::remove_file(&stamp_path);
        allnoconfig(cache, tree, name, &frag, &out, &[])?;
        fs::write(&stamp_path, stamp)?;
    }
    let config = fs::read_to_string(out.join(".config"))?;
    let missing = missing(&wanted, &config);
    if !missing.is_empty() {
        for m in &missing {
            println!("    not in .config as asked: {m}");
        }
        bail!(
            "{} option(s) of {} did not take (unmet dependencies or unknown symbols): {}",
            missing.len(),
            frag.display(),
            missing.join(", ")
        );
    }
    println!(
        "    all {} options of the fragment are set as asked",
        wanted.len()
    );
    Ok(out)
}

/// The `.config` fragment `fragment_name` gives in build directory
/// `build_name` with `make` given `extra` too (e.g. another `RUSTC=`),
/// made afresh and not checked against the fragment.
pub fn configure_with(
    cache: &Cache,
    tree: &Path,
    fragment_name: &str,
    build_name: &str,
    extra: &[String],
) -> Result<String> {
    let out = cache.build(build_name);
    fs::create_dir_all(&out)?;
    allnoconfig(
        cache,
        tree,
        build_name,
        &fragment(fragment_name),
        &out,
        extra,
    )?;
    let config = out.join(".config");
    fs::read_to_string(&config).with_context(|| format!("read {}", config.display()))
}

/// `make O=<out> KCONFIG_ALLCONFIG=<frag> <extra> allnoconfig`, logged.
fn allnoconfig(
    cache: &Cache,
    tree: &Path,
    name: &str,
    frag: &Path,
    out: &Path,
    extra: &[String],
) -> Result<()> {
    let log = cache.log(&format!("{name}-config"));
    println!("    {} -> {}/.config", frag.display(), out.display());
    let mut make = Command::new("make");
    make.current_dir(tree)
        .arg(format!("O={}", out.display()))
        .arg(format!("KCONFIG_ALLCONFIG={}", frag.display()))
        .args(extra)
        .arg("allnoconfig");
    match logged(&mut make, &log, None, |_| true)? {
        Ended::Exited(s) if s.success() => Ok(()),
        _ => {
            for line in tail(&log, 40) {
                println!("    | {line}");
            }
            Err(anyhow!("make allnoconfig failed; log: {}", log.display()))
        }
    }
}

/// `(CONFIG_X, Some(value))` for `CONFIG_X=value`, `(CONFIG_X, None)` for
/// `# CONFIG_X is not set`; comments and blank lines skipped.
pub fn parse_fragment(text: &str) -> Vec<(String, Option<String>)> {
    text.lines()
        .map(str::trim)
        .filter_map(|l| {
            if let Some(sym) = l
                .strip_prefix("# ")
                .and_then(|r| r.strip_suffix(" is not set"))
            {
                return sym.starts_with("CONFIG_").then(|| (sym.to_string(), None));
            }
            let (k, v) = l.split_once('=')?;
            k.starts_with("CONFIG_")
                .then(|| (k.to_string(), Some(v.to_string())))
        })
        .collect()
}

/// One wish per symbol, the last one: a later layer overrides an earlier.
pub fn last_wins(wanted: Vec<(String, Option<String>)>) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for (k, v) in wanted {
        out.retain(|(h, _)| *h != k);
        out.push((k, v));
    }
    out
}

/// The fragment's lines that .config does not carry, as `CONFIG_X=v (got
/// ...)`. An `n`/unset wish is met by `# ... is not set` or by absence.
pub fn missing(wanted: &[(String, Option<String>)], config: &str) -> Vec<String> {
    let have = parse_fragment(config);
    let value = |k: &str| {
        have.iter()
            .find(|(h, _)| h == k)
            .and_then(|(_, v)| v.clone())
    };
    wanted
        .iter()
        .filter_map(|(k, want)| {
            let want = want.clone().filter(|v| v != "n");
            let got = value(k).filter(|v| v != "n");
            (want != got).then(|| {
                format!(
                    "{k}={} (got {})",
                    want.as_deref().unwrap_or("n"),
                    got.as_deref().unwrap_or("unset")
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_dropped_options() {
        let frag = "# comment\nCONFIG_A=y\nCONFIG_NR=8192\n# CONFIG_B is not set\nCONFIG_C=n\n\nCONFIG_D=y\n";
        let wanted = parse_fragment(frag);
        assert_eq!(wanted.len(), 5);
        assert_eq!(wanted[2], ("CONFIG_B".into(), None));
        let config = "CONFIG_A=y\nCONFIG_NR=512\n# CONFIG_C is not set\nCONFIG_B=y\n";
        assert_eq!(
            missing(&wanted, config),
            [
                "CONFIG_NR=8192 (got 512)",
                "CONFIG_B=n (got y)",
                "CONFIG_D=y (got unset)"
            ]
        );
    }

    #[test]
    fn a_later_layer_overrides_an_earlier_one() {
        let joined = "CONFIG_A=y\nCONFIG_B=y\n# CONFIG_A is not set\nCONFIG_B=m\n";
        let wanted = last_wins(parse_fragment(joined));
        assert_eq!(
            wanted,
            [
                ("CONFIG_A".into(), None),
                ("CONFIG_B".into(), Some("m".into()))
            ]
        );
        assert!(missing(&wanted, "CONFIG_B=m\n").is_empty());
        assert_eq!(layers("debug"), ["boot", "debug"]);
        assert_eq!(layers("boot"), ["boot"]);
    }
}
