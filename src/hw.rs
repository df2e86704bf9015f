// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The hardware each strategy may touch, as two small traits.
//!
//! In the kernel (`src/ffi`) the window's hardware is memory: the glue hands
//! each call the calling CPU's slot entries, which the core stores to as
//! `set_pte()` does, and a slot is flushed by `invlpg` where that is enough,
//! else by the glue's `flush_tlb_one_kernel()`; re-insertion calls the
//! glue's `set_direct_map_*_noflush` / `flush_tlb_kernel_range`. The
//! simulator implements both traits over a model MMU.
//! They are separate so that the window strategy, which is generic over
//! [`SlotHardware`] only, cannot write the direct map or flush another CPU's
//! TLB: the type system says so, and the simulator's counters confirm it.
//!
//! The arguments are typed so that the core cannot pass what the hardware
//! must not get: a [`SlotAddr`] only comes from a [`Layout`](crate::Layout)
//! and a [`Pte`] only from a [`PteTemplate`](crate::PteTemplate).

use x86_64::structures::paging::{PhysFrame, Size4KiB};

use crate::error::Error;
use crate::geometry::{Placement, SlotAddr};
use crate::pte::Pte;

/// What the window needs: the slot PTEs, the local TLB and a way to
/// complain.
///
/// Every method acts for the CPU the caller runs on.
pub trait SlotHardware {
    /// Writes `pte` into the kernel page-table entry that maps `slot`.
    fn set_pte(&mut self, slot: SlotAddr, pte: Pte);
    /// Clears the entry that maps `slot` (no flush).
    fn clear_pte(&mut self, slot: SlotAddr);
    /// Whether the entry that maps `slot` is empty (`pte_none()`).
    fn pte_is_none(&self, slot: SlotAddr) -> bool;
    /// Drops any translation of `slot` from this CPU's TLB, and only this one's.
    fn flush_local(&mut self, slot: SlotAddr);
    /// Reports a misuse the core found where it cannot return an error (a
    /// guard's unmap in `drop`): the kernel's `WARN`.
    fn warn(&mut self, err: Error);
    /// Whether the entries of `placement`'s slots can be written at all:
    /// the kernel's glue hands over only the page tables a call needs. The
    /// window checks before it changes anything, and refuses with
    /// [`Error::NullPointer`].
    fn has_tables(&self, placement: Placement) -> bool {
        let _ = placement;
        true
    }
}

/// What re-insertion needs: the page's direct-map entry and a global flush.
pub trait DirectMapHardware {
    /// Makes the direct-map entry of `frame` present (no flush needed: x86
    /// does not cache non-present entries).
    fn direct_map_present(&mut self, frame: PhysFrame<Size4KiB>);
    /// Makes the direct-map entry of `frame` absent (no flush).
    fn direct_map_absent(&mut self, frame: PhysFrame<Size4KiB>);
    /// Drops the translation of `frame`'s direct-map address from every
    /// CPU's TLB: an IPI to each other online CPU.
    fn flush_all(&mut self, frame: PhysFrame<Size4KiB>);
}
