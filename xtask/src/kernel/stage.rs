// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The boot test's stages, each with the stages it needs: a stage runs
//! when everything it needs passed, and is reported as not run otherwise,
//! so that a failure stops only what depends on it.

use std::collections::HashSet;

use anyhow::Result;

use super::qemu::Paging;
use crate::report::Report;

/// The kernels the boot test builds and boots: the tested one
/// (`boot.config`, as Debian builds it) and the one with the kernel's bug
/// detectors on (`boot.config` + `debug.config`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    Boot,
    Debug,
}

impl Kernel {
    /// Its configuration's name, and its logs' prefix.
    pub fn name(self) -> &'static str {
        ["boot", "debug"][self as usize]
    }
}

/// One stage of the boot test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    Packages,
    Tree,
    Series,
    RoundTrip,
    Checkpatch,
    Configure(Kernel),
    Build(Kernel),
    PanicProbe,
    NoTarget,
    Selftests,
    Initramfs(Kernel),
    Boot(Kernel, Paging),
    Verdict(Kernel, Paging),
    Stress(Kernel),
    Faults,
    WindowFaults,
    Nomitig,
}

impl Stage {
    /// The stages that must have passed before this one can run.
    pub fn needs(self) -> Vec<Stage> {
        use Stage::*;
        match self {
            Packages => vec![],
            Tree => vec![Packages],
            Series | Checkpatch => vec![Tree],
            RoundTrip | PanicProbe | NoTarget | Nomitig | Configure(_) => vec![Series],
            Build(k) => vec![Configure(k)],
            // The selftests build against the boot kernel's uapi headers.
            Selftests => vec![Build(Kernel::Boot)],
            Initramfs(_) => vec![Selftests],
            // A boot's log is judged whatever the boot's own outcome (a
            // hang, a panic): the verdict needs what the boot needed.
            Boot(k, _) | Verdict(k, _) => vec![Build(k), Initramfs(k)],
            Stress(k) => vec![Build(k), Selftests],
            Faults | WindowFaults => vec![Build(Kernel::Debug), Selftests],
        }
    }

    /// Its name in the progress lines.
    pub fn name(self) -> String {
        use Stage::*;
        // `kernel: debug ` for the debug kernel, `kernel: ` for the tested one.
        let kernel = |k: Kernel| ["kernel: ", "kernel: debug "][k as usize];
        let s = match self {
            Packages => "packages",
            Tree => "linux-source-6.12 tree",
            Series => "patch series",
            RoundTrip => "series export --check (round trip)",
            Checkpatch => "checkpatch --strict",
            Configure(Kernel::Boot) => "configure boot",
            Configure(Kernel::Debug) => "configure debug (boot + debug.config)",
            Build(Kernel::Boot) => "build boot (bzImage, uapi headers)",
            Build(Kernel::Debug) => "build debug (bzImage)",
            PanicProbe => "the object check rejects a panic path",
            NoTarget => "Kconfig hides GMEM_KMAP without the Rust target",
            Selftests => "selftests (make, static)",
            Initramfs(Kernel::Boot) => "initramfs",
            Initramfs(Kernel::Debug) => "initramfs, debug",
            Boot(k, p) => return format!("{}boot under QEMU, {p} paging", kernel(k)),
            Verdict(k, p) => return format!("{}KUnit results and boot log, {p} paging", kernel(k)),
            Stress(Kernel::Boot) => "race stress on 8 CPUs",
            Stress(Kernel::Debug) => "race stress on 8 CPUs, debug",
            Faults => "faults injected, debug, debug_pagealloc=off",
            WindowFaults => "the window's preparation failed at boot, debug",
            Nomitig => "series objects with mitigations off (nomitig)",
        };
        format!("kernel: {s}")
    }
}

/// Runs stages into a [`Report`], keeping each one's outcome for the
/// stages that need it.
pub struct Pipeline<'r> {
    pub report: &'r mut Report,
    passed: HashSet<Stage>,
}

impl<'r> Pipeline<'r> {
    pub fn new(report: &'r mut Report) -> Self {
        let passed = HashSet::new();
        Pipeline { report, passed }
    }

    /// True when everything `stage` needs passed; otherwise reports it as
    /// not run, naming the first stage it needed that did not pass.
    pub fn ready(&mut self, stage: Stage) -> bool {
        let Some(missing) = stage.needs().into_iter().find(|n| !self.passed.contains(n)) else {
            return true;
        };
        let why = format!("not run: needs `{}`, which did not pass", missing.name());
        self.report.run(&stage.name(), || Ok(Some(why)));
        false
    }

    /// Runs `stage` when it is [`ready`](Self::ready): its value when it passed.
    pub fn run<T>(&mut self, stage: Stage, run: impl FnOnce() -> Result<T>) -> Option<T> {
        if !self.ready(stage) {
            return None;
        }
        let mut value = None;
        self.report.stage(&stage.name(), || {
            value = Some(run()?);
            self.passed.insert(stage);
            Ok(())
        });
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::bail;

    #[test]
    fn a_failure_stops_only_what_needs_it() {
        let mut report = Report::default();
        let mut p = Pipeline::new(&mut report);
        assert_eq!(p.run(Stage::Packages, || Ok(1)), Some(1));
        assert_eq!(p.run(Stage::Tree, || Ok(())), Some(()));
        assert_eq!(p.run::<()>(Stage::Series, || bail!("does not apply")), None);
        // Checkpatch needs the tree only; the configure needs the series.
        assert!(p.run(Stage::Checkpatch, || Ok(())).is_some());
        let not_ready = || -> Result<()> { panic!("run without the series") };
        assert_eq!(p.run(Stage::Configure(Kernel::Boot), not_ready), None);
        // Not run counts as not passed for the stages after it.
        assert!(!p.ready(Stage::Build(Kernel::Boot)));
        assert_eq!((report.passed, report.failed), (3, 1));
    }

    #[test]
    fn every_stage_has_its_own_name_and_needs_only_earlier_ones() {
        use Stage::*;
        let mut all = vec![Packages, Tree, Series, RoundTrip, Checkpatch, PanicProbe];
        all.extend([NoTarget, Selftests, Faults, WindowFaults, Nomitig]);
        for k in [Kernel::Boot, Kernel::Debug] {
            all.extend([Configure(k), Build(k), Initramfs(k), Stress(k)]);
            for p in [Paging::Four, Paging::Five] {
                all.extend([Boot(k, p), Verdict(k, p)]);
            }
        }
        let names: HashSet<String> = all.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), all.len());
        // No cycles: following needs always ends, within a bounded depth.
        fn depth(s: Stage, n: usize) {
            assert!(n < 20, "{s:?} needs itself");
            s.needs().into_iter().for_each(|d| depth(d, n + 1));
        }
        all.into_iter().for_each(|s| depth(s, 0));
        let want = "kernel: debug KUnit results and boot log, 4-level paging";
        assert_eq!(Verdict(Kernel::Debug, Paging::Four).name(), want);
    }
}
