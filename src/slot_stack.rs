// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The per-task stack of live slots (kmap_local's `struct kmap_ctrl`).
//!
//! C embeds it in `task_struct`; only the core changes it. A hard IRQ that
//! maps a page pushes onto the stack of the task it interrupted and pops
//! before returning, exactly as kmap_local does.

use core::mem::offset_of;

use crate::error::{Error, Result};
use crate::geometry::SLOTS_PER_CPU;
use crate::pte::Pte;

/// A task's live slots: how many, on which CPU, and their PTEs so they can be
/// re-installed when the task is scheduled back in.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct SlotStack {
    /// Live slots; slots `0..depth` of CPU `cpu` are this task's.
    depth: u32,
    /// The CPU the live slots belong to; meaningless when `depth` is 0.
    cpu: u32,
    /// The PTE of each live slot, as installed.
    pteval: [u64; SLOTS_PER_CPU],
}

impl Default for SlotStack {
    fn default() -> Self {
        Self::new()
    }
}

impl SlotStack {
    /// An empty stack, as every new task starts.
    pub const fn new() -> Self {
        Self {
            depth: 0,
            cpu: 0,
            pteval: [0; SLOTS_PER_CPU],
        }
    }

    /// Number of live slots. A value C scribbled beyond the maximum reads as
    /// full, so no new slot is handed out from a corrupted stack.
    pub fn depth(&self) -> usize {
        (self.depth as usize).min(SLOTS_PER_CPU)
    }

    /// Whether the task holds no slot.
    pub fn is_empty(&self) -> bool {
        self.depth == 0
    }

    /// The CPU whose slots the task holds, if it holds any.
    pub fn cpu(&self) -> Option<u32> {
        (!self.is_empty()).then_some(self.cpu)
    }

    /// Checks that a task on `cpu` may use its live slots there.
    pub(crate) fn check_cpu(&self, cpu: u32) -> Result<()> {
        match self.cpu() {
            Some(owner) if owner != cpu => Err(Error::WrongCpu),
            _ => Ok(()),
        }
    }

    /// Claims the next slot on `cpu`; returns its index.
    pub(crate) fn push(&mut self, cpu: u32) -> Result<usize> {
        self.check_cpu(cpu)?;
        let idx = self.depth();
        if idx >= SLOTS_PER_CPU {
            return Err(Error::DepthExceeded);
        }
        self.cpu = cpu;
        self.depth = idx as u32 + 1;
        Ok(idx)
    }

    /// Records the PTE installed in slot `idx`.
    pub(crate) fn save(&mut self, idx: usize, pte: Pte) {
        if let Some(slot) = self.pteval.get_mut(idx) {
            *slot = pte.bits();
        }
    }

    /// Releases the top slot.
    pub(crate) fn pop(&mut self) {
        self.depth = self.depth().saturating_sub(1) as u32;
    }

    /// The live slots, first mapped first, with their saved PTEs.
    pub(crate) fn live(&self) -> impl Iterator<Item = (usize, Pte)> + '_ {
        self.pteval[..self.depth()]
            .iter()
            .enumerate()
            .map(|(idx, bits)| (idx, Pte::from_bits(*bits)))
    }

    /// Forgets every slot without touching the hardware.
    pub(crate) fn clear(&mut self) {
        *self = Self::new();
    }

    /// The offset of each field, for checking the C header's layout.
    #[doc(hidden)]
    pub const fn c_fields() -> [(&'static str, usize); 3] {
        [
            ("depth", offset_of!(SlotStack, depth)),
            ("cpu", offset_of!(SlotStack, cpu)),
            ("pteval", offset_of!(SlotStack, pteval)),
        ]
    }

    /// Prepares a child's copy of its parent's stack at fork.
    ///
    /// The child runs nowhere yet, so it holds nothing; a parent forking with
    /// live slots is a misuse (kmap_local warns too).
    pub fn reset_for_fork(&mut self) -> Result<()> {
        let was_empty = self.is_empty();
        self.clear();
        if was_empty {
            Ok(())
        } else {
            Err(Error::StackNotEmpty)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_pop_and_limits() {
        let mut s = SlotStack::new();
        assert_eq!(s.cpu(), None);
        for want in 0..SLOTS_PER_CPU {
            assert_eq!(s.push(3), Ok(want));
        }
        assert_eq!(s.push(3), Err(Error::DepthExceeded));
        assert_eq!(s.push(2), Err(Error::WrongCpu));
        assert_eq!(s.cpu(), Some(3));
        for _ in 0..SLOTS_PER_CPU {
            s.pop();
        }
        assert!(s.is_empty());
        assert_eq!(s.push(2), Ok(0));
    }

    #[test]
    fn corrupted_depth_reads_as_full() {
        let mut s = SlotStack::new();
        s.depth = 1000;
        assert_eq!(s.depth(), SLOTS_PER_CPU);
        assert_eq!(s.live().count(), SLOTS_PER_CPU);
        assert_eq!(s.push(0), Err(Error::DepthExceeded));
    }

    #[test]
    fn fork_resets_and_reports() {
        let mut s = SlotStack::new();
        assert_eq!(s.reset_for_fork(), Ok(()));
        s.push(0).unwrap();
        assert_eq!(s.reset_for_fork(), Err(Error::StackNotEmpty));
        assert!(s.is_empty());
    }
}
