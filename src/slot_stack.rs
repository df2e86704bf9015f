// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The per-task stack of live slots (kmap_local's `struct kmap_ctrl`).
//!
//! C embeds it in `task_struct`; only the core changes it. A hard IRQ that
//! maps a page pushes onto the stack of the task it interrupted and pops
//! before returning, exactly as kmap_local does. That is why the fields are
//! `Cell`s and every method takes `&self`: an interrupt handler on the same
//! CPU may reach the stack through its own reference while the task's call
//! is suspended, which shared references to cells allow and `&mut` would
//! not. (`Cell` is not `Sync`, so no other thread can.)

use core::cell::Cell;
use core::fmt;
use core::mem::offset_of;

use x86_64::structures::paging::{PhysFrame, Size4KiB};

use crate::cpu::CpuId;
use crate::error::{Error, Result};
use crate::geometry::{Placement, SLOTS_PER_CPU};
use crate::pte::pfn_of;

/// A task's live slots: how many, on which CPU, and the frame each maps, so
/// they can be re-installed when the task is scheduled back in.
///
/// Two stacks are equal when their live state is: saved frames past the
/// depth are leftovers nothing reads.
///
/// # Invariants
/// Only the core writes the fields, and when `depth > 0`:
/// - slots `0..depth` of CPU `cpu` are this task's, and no other task's;
/// - `pfn[i]` is the frame slot `i` maps (present while the task runs on
///   `cpu`, cleared while it is switched out);
/// - bit `i` of `private_slots` says slot `i` is in the private placement.
///
/// The stack lives in C's `task_struct`, where any kernel code could write
/// it, so the core relies on no more than it checks: a depth beyond the
/// maximum reads as full, and each saved frame goes through the template
/// again before it is re-installed, so a scribbled word can at worst name
/// another frame, never other protection bits.
// Cloning is for tests, which compare snapshots: in the kernel a copy of a
// live stack could unmap the original's slots behind its guard.
#[cfg_attr(any(test, feature = "sim"), derive(Clone))]
#[repr(C)]
pub struct SlotStack {
    /// Live slots; slots `0..depth` of CPU `cpu` are this task's.
    depth: Cell<u32>,
    /// The CPU the live slots belong to; meaningless when `depth` is 0.
    cpu: Cell<u32>,
    /// Bit `i`: slot `i` is in the private placement, not the shared one.
    private_slots: Cell<u32>,
    /// The frame number each live slot maps.
    pfn: [Cell<u64>; SLOTS_PER_CPU],
}

impl PartialEq for SlotStack {
    fn eq(&self, other: &Self) -> bool {
        self.cpu() == other.cpu() && self.live().eq(other.live())
    }
}

impl Eq for SlotStack {}

impl fmt::Debug for SlotStack {
    // Inline, like a derived impl: the kernel object must not carry it.
    #[inline]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// The saved frames of the live slots.
        struct Live<'a>(&'a SlotStack);
        impl fmt::Debug for Live<'_> {
            #[inline]
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.live().map(|(_, pfn)| pfn))
                    .finish()
            }
        }
        f.debug_struct("SlotStack")
            .field("cpu", &self.cpu())
            .field("live", &Live(self))
            .finish()
    }
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
            depth: Cell::new(0),
            cpu: Cell::new(0),
            private_slots: Cell::new(0),
            pfn: [const { Cell::new(0) }; SLOTS_PER_CPU],
        }
    }

    /// Number of live slots. A value C scribbled beyond the maximum reads as
    /// full, so no new slot is handed out from a corrupted stack.
    #[inline]
    pub fn depth(&self) -> usize {
        (self.depth.get() as usize).min(SLOTS_PER_CPU)
    }

    /// Whether the task holds no slot.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.depth.get() == 0
    }

    /// The CPU whose slots the task holds, if it holds any.
    #[inline]
    pub fn cpu(&self) -> Option<CpuId> {
        (!self.is_empty()).then_some(CpuId::new(self.cpu.get()))
    }

    /// Checks that a task on `cpu` may use its live slots there.
    #[inline]
    pub(crate) fn check_cpu(&self, cpu: CpuId) -> Result<()> {
        match self.cpu() {
            Some(owner) if owner != cpu => Err(Error::WrongCpu),
            _ => Ok(()),
        }
    }

    /// Claims slot `idx` on `cpu` in `placement`. The caller checked that
    /// `idx` is the current depth, below `SLOTS_PER_CPU`, and that `cpu`
    /// owns the stack.
    #[inline]
    pub(crate) fn push(&self, cpu: CpuId, idx: usize, placement: Placement) {
        let bit = 1u32 << (idx % SLOTS_PER_CPU);
        let private = match placement {
            Placement::Shared => self.private_slots.get() & !bit,
            Placement::Private => self.private_slots.get() | bit,
        };
        self.private_slots.set(private);
        self.cpu.set(cpu.as_u32());
        self.depth.set(idx as u32 + 1);
    }

    /// The placement of slot `idx` (as recorded, or as C scribbled it).
    #[inline]
    pub(crate) fn placement(&self, idx: usize) -> Placement {
        if self.private_slots.get() & (1u32 << (idx % SLOTS_PER_CPU)) != 0 {
            Placement::Private
        } else {
            Placement::Shared
        }
    }

    /// Records the frame mapped at slot `idx`.
    #[inline]
    pub(crate) fn save(&self, idx: usize, frame: PhysFrame<Size4KiB>) {
        if let Some(slot) = self.pfn.get(idx) {
            slot.set(pfn_of(frame));
        }
    }

    /// Releases slot `idx`, which the caller checked is the top one.
    #[inline]
    pub(crate) fn pop(&self, idx: usize) {
        self.depth.set(idx as u32);
    }

    /// The live slots, first mapped first, with their saved frame numbers
    /// (as saved, or as C scribbled them: unchecked).
    #[inline]
    pub(crate) fn live(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.pfn[..self.depth()]
            .iter()
            .enumerate()
            .map(|(idx, pfn)| (idx, pfn.get()))
    }

    /// [`live`](Self::live), with each slot's placement.
    #[inline]
    pub(crate) fn live_placed(&self) -> impl Iterator<Item = (usize, u64, Placement)> + '_ {
        self.live()
            .map(|(idx, pfn)| (idx, pfn, self.placement(idx)))
    }

    /// Forgets every slot without touching the hardware. Saved frames past
    /// the depth are never read, so they stay (and no `memset` is emitted).
    pub(crate) fn clear(&self) {
        self.depth.set(0);
        self.cpu.set(0);
    }

    /// The offset of each field, for checking the C header's layout.
    #[doc(hidden)]
    pub const fn c_fields() -> [(&'static str, usize); 4] {
        [
            ("depth", offset_of!(SlotStack, depth)),
            ("cpu", offset_of!(SlotStack, cpu)),
            ("private_slots", offset_of!(SlotStack, private_slots)),
            ("pfn", offset_of!(SlotStack, pfn)),
        ]
    }

    /// Prepares a child's copy of its parent's stack at fork.
    ///
    /// The child runs nowhere yet, so it holds nothing; a parent forking with
    /// live slots is a misuse (kmap_local warns too).
    pub fn reset_for_fork(&self) -> Result<()> {
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
    fn push_pop_and_owner() {
        let s = SlotStack::new();
        let (two, three) = (CpuId::new(2), CpuId::new(3));
        assert_eq!((s.cpu(), s.check_cpu(two)), (None, Ok(())));
        for idx in 0..SLOTS_PER_CPU {
            let placement = if idx % 3 == 0 {
                Placement::Private
            } else {
                Placement::Shared
            };
            s.push(three, idx, placement);
            assert_eq!(s.placement(idx), placement);
        }
        assert_eq!((s.depth(), s.cpu()), (SLOTS_PER_CPU, Some(three)));
        assert_eq!(s.check_cpu(two), Err(Error::WrongCpu));
        for idx in (0..SLOTS_PER_CPU).rev() {
            s.pop(idx);
        }
        assert!(s.is_empty());
        assert_eq!(s.check_cpu(two), Ok(()));
    }

    #[test]
    fn corrupted_depth_reads_as_full() {
        let s = SlotStack::new();
        s.depth.set(1000);
        assert_eq!(s.depth(), SLOTS_PER_CPU);
        assert_eq!(s.live().count(), SLOTS_PER_CPU);
    }

    #[test]
    fn fork_resets_and_reports() {
        let s = SlotStack::new();
        assert_eq!(s.reset_for_fork(), Ok(()));
        s.push(CpuId::new(0), 0, Placement::Shared);
        assert_eq!(s.reset_for_fork(), Err(Error::StackNotEmpty));
        assert!(s.is_empty());
    }
}
