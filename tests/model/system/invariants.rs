// SPDX-License-Identifier: GPL-2.0 OR MIT
//! What must hold after every step, checked against the reference.

use gmem_kmap::{CpuId, SLOTS_PER_CPU};

use super::{Check, Strategy, System};

impl System {
    pub(super) fn check_invariants(&self) -> Check {
        match self.strategy {
            Strategy::Window => self.check_window(),
            Strategy::Reinsert => self.check_reinsert(),
        }
    }

    fn check_window(&self) -> Check {
        for task in &self.tasks {
            ensure!(
                task.stack.depth() == task.held.len(),
                "stack depth {} != {}",
                task.stack.depth(),
                task.held.len()
            );
        }
        let layout = self.window.layout();
        for cpu in 0..self.nr_cpus() {
            // Exactly the running task's slots are present, each mapping its page.
            let held = &self.tasks[self.running[cpu as usize]].held;
            for idx in 0..SLOTS_PER_CPU {
                let addr = layout.slot_addr(CpuId::new(cpu), idx).unwrap().addr();
                let pte = self.machine.pte(addr);
                match held.get(idx) {
                    Some(&(a, frame)) => {
                        ensure!(
                            a == addr,
                            "task holds {a:?} at depth {idx}, slot is {addr:?}"
                        );
                        ensure!(
                            pte == self.window.template().pte(frame).unwrap(),
                            "slot {cpu}/{idx} maps {pte:?}, not {frame:?}"
                        );
                    }
                    None => ensure!(
                        pte.is_none(),
                        "free slot {cpu}/{idx} still present: {pte:?}"
                    ),
                }
            }
            // The TLB holds only this CPU's slots, never stale, never the direct map.
            for (va, pte) in self.machine.tlb_entries(cpu) {
                let slot = layout.slot_of(va);
                ensure!(
                    slot.map(|s| s.cpu) == Ok(CpuId::new(cpu)),
                    "cpu {cpu} caches {va:?} ({slot:?})"
                );
                ensure!(
                    self.machine.pte(va) == pte,
                    "cpu {cpu} caches a stale {va:?}: {pte:?}"
                );
            }
        }
        let c = self.machine.counters();
        ensure!(
            c.direct_map_writes == 0 && c.global_flushes == 0 && c.ipis == 0,
            "the window touched the direct map or other cpus: {c:?}"
        );
        Ok(())
    }

    fn check_reinsert(&self) -> Check {
        for f in 0..self.machine.nr_frames() {
            let frame = self.machine.frame(f);
            let holders = self
                .tasks
                .iter()
                .flat_map(|t| &t.held)
                .filter(|h| h.1 == frame)
                .count();
            ensure!(
                self.users[f] as usize == holders,
                "frame {f}: {} users, {holders} holders",
                self.users[f]
            );
            let present = !self
                .machine
                .pte(self.machine.direct_map_addr(frame))
                .is_none();
            ensure!(
                present == (holders > 0),
                "frame {f} present={present} with {holders} holders"
            );
        }
        for cpu in 0..self.nr_cpus() {
            for (va, pte) in self.machine.tlb_entries(cpu) {
                ensure!(
                    self.machine.pte(va) == pte,
                    "cpu {cpu} caches a stale {va:?}: {pte:?}"
                );
            }
        }
        let c = self.machine.counters();
        ensure!(
            c.slot_pte_writes == 0 && c.local_flushes == 0,
            "re-insertion used the window: {c:?}"
        );
        ensure!(
            c.global_flushes == self.expected_global_flushes,
            "{} shootdowns, want {}",
            c.global_flushes,
            self.expected_global_flushes
        );
        ensure!(
            c.ipis == c.global_flushes * u64::from(self.nr_cpus() - 1),
            "ipis {c:?}"
        );
        Ok(())
    }
}
