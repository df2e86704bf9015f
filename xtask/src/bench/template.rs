// SPDX-License-Identifier: GPL-2.0 OR MIT
//! `{{name}}` placeholders in a Markdown template: the results page's
//! prose is benches/results.md.in, its figures and tables come from here.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result, bail, ensure};

/// `template` with each `{{name}}` replaced by the value of `name`.
///
/// A template and its code that disagree are a bug, not a gap to print:
/// a placeholder without a value, a value no placeholder uses, a name
/// given twice and an unclosed `{{` are errors. A value's trailing
/// newlines are dropped, so that a table ends where its placeholder's
/// line does.
pub fn fill(template: &str, values: &[(&str, String)]) -> Result<String> {
    let mut by_name = BTreeMap::new();
    for (name, value) in values {
        if by_name
            .insert(*name, value.trim_end_matches('\n'))
            .is_some()
        {
            bail!("the value `{name}` is given twice");
        }
    }
    let (mut out, mut rest) = (String::with_capacity(template.len()), template);
    let (mut used, mut missing) = (BTreeSet::new(), BTreeSet::new());
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").with_context(|| {
            let line = after.lines().next().unwrap_or_default();
            format!("an unclosed {{{{ in the template, before `{line}`")
        })?;
        let name = &after[..end];
        match by_name.get(name) {
            Some(value) => {
                out.push_str(value);
                used.insert(name);
            }
            None => {
                missing.insert(name);
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    let unused: Vec<&str> = by_name
        .keys()
        .copied()
        .filter(|n| !used.contains(n))
        .collect();
    let mut errors = Vec::new();
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|n| format!("{{{{{n}}}}}")).collect();
        errors.push(format!("no value for the template's {}", names.join(", ")));
    }
    if !unused.is_empty() {
        errors.push(format!(
            "values the template does not use: {}",
            unused.join(", ")
        ));
    }
    ensure!(errors.is_empty(), "{}", errors.join("; "));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_take_their_values() {
        let t = "| a |\n{{table}}\n\n{{n}} CPUs, {{n}} again\n";
        let v = [("table", "| 1 |\n| 2 |\n".into()), ("n", "4".into())];
        assert_eq!(
            fill(t, &v).unwrap(),
            "| a |\n| 1 |\n| 2 |\n\n4 CPUs, 4 again\n"
        );
        assert_eq!(fill("no placeholder", &[]).unwrap(), "no placeholder");
    }

    #[test]
    fn a_placeholder_without_a_value_fails() {
        let e = fill("{{a}} and {{b}}", &[("a", "1".into())]).unwrap_err();
        assert_eq!(e.to_string(), "no value for the template's {{b}}");
    }

    #[test]
    fn a_value_the_template_does_not_use_fails() {
        let e = fill("{{a}}", &[("a", "1".into()), ("b", "2".into())]).unwrap_err();
        assert_eq!(e.to_string(), "values the template does not use: b");
    }

    #[test]
    fn a_name_given_twice_or_an_unclosed_placeholder_fails() {
        let twice = [("a", "1".into()), ("a", "2".into())];
        assert!(
            fill("{{a}}", &twice)
                .unwrap_err()
                .to_string()
                .contains("twice")
        );
        let e = fill("x {{a} y\n", &[("a", "1".into())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unclosed"), "{e}");
    }
}
