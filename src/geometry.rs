// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Where each CPU's slots live: slot → address and back.
//!
//! The window is one contiguous, page-aligned range of kernel virtual
//! addresses. CPU `c` owns the `SLOTS_PER_CPU` pages starting at
//! `base + c * SLOTS_PER_CPU * SLOT_SIZE`; slot `i` of that CPU is the `i`-th
//! page. The page tables covering the range are shared by every CPU (as the
//! fixmap is); the slots are only *logically* per-CPU.

use static_assertions::const_assert;
use x86_64::VirtAddr;
use x86_64::structures::paging::{PageSize, Size4KiB};

use crate::error::{Error, Result};

/// Slots each CPU owns, i.e. the deepest nesting of live mappings per task
/// (kmap_local's `KM_MAX_IDX`).
pub const SLOTS_PER_CPU: usize = 16;

/// Size of one slot: one 4 KiB page.
pub const SLOT_SIZE: u64 = Size4KiB::SIZE;

/// The most CPUs a window can serve (Debian's `NR_CPUS`).
pub const MAX_CPUS: u32 = 8192;

/// Bytes of address space one CPU's slots take.
pub const CPU_STRIDE: u64 = SLOTS_PER_CPU as u64 * SLOT_SIZE;

/// Lowest address the window may start at: the kernel half of the 48-bit
/// canonical space, which is also canonical under 5-level paging.
pub const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;

// The slot index must fit the control block's bookkeeping and a slot must be
// exactly one base page; the largest window must fit in one 1 GiB PUD entry
// so the kernel can reserve it with a handful of page tables.
const_assert!(SLOTS_PER_CPU.is_power_of_two());
const_assert!(SLOTS_PER_CPU <= 64);
const_assert!(SLOT_SIZE == 4096);
const_assert!(MAX_CPUS as u64 * CPU_STRIDE <= 1 << 30);

/// A validated window: base address and the number of CPUs it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    base: VirtAddr,
    nr_cpus: u32,
    /// `nr_cpus * CPU_STRIDE`, kept because every unmap needs it.
    size: u64,
}

/// A CPU's slot, as found from an address inside the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotId {
    /// The CPU that owns the slot.
    pub cpu: u32,
    /// The slot's position in that CPU's stack (0 = first mapped).
    pub idx: usize,
}

impl Layout {
    /// Checks that `nr_cpus` windows of `SLOTS_PER_CPU` pages fit at `base`.
    ///
    /// `base` must be page-aligned, in the kernel half, and the whole window
    /// must end at or below the top of the address space.
    pub fn new(base: VirtAddr, nr_cpus: u32) -> Result<Self> {
        let start = base.as_u64();
        if nr_cpus == 0 || nr_cpus > MAX_CPUS {
            return Err(Error::BadLayout);
        }
        if start < KERNEL_HALF || !start.is_multiple_of(SLOT_SIZE) {
            return Err(Error::BadLayout);
        }
        let size = u64::from(nr_cpus) * CPU_STRIDE;
        // `start + size` may be exactly 2^64 (window at the very top).
        if start.checked_add(size - 1).is_none() {
            return Err(Error::BadLayout);
        }
        Ok(Self {
            base,
            nr_cpus,
            size,
        })
    }

    /// First address of the window.
    #[inline]
    pub fn base(&self) -> VirtAddr {
        self.base
    }

    /// Number of CPUs the window serves.
    #[inline]
    pub fn nr_cpus(&self) -> u32 {
        self.nr_cpus
    }

    /// Bytes of address space the window covers.
    #[inline]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Address of slot `idx` of CPU `cpu`.
    #[inline]
    pub fn slot_addr(&self, cpu: u32, idx: usize) -> Result<VirtAddr> {
        if cpu >= self.nr_cpus {
            return Err(Error::BadCpu);
        }
        if idx >= SLOTS_PER_CPU {
            return Err(Error::DepthExceeded);
        }
        let offset = u64::from(cpu) * CPU_STRIDE + idx as u64 * SLOT_SIZE;
        // SAFETY: `offset < size`, and `new` checked that the whole window is
        // in the kernel half without wrapping, so the sum is canonical.
        Ok(unsafe { VirtAddr::new_unsafe(self.base.as_u64() + offset) })
    }

    /// The slot containing `addr` (any offset inside the slot's page).
    #[inline]
    pub fn slot_of(&self, addr: VirtAddr) -> Result<SlotId> {
        let offset = match addr.as_u64().checked_sub(self.base.as_u64()) {
            Some(off) if off < self.size => off,
            _ => return Err(Error::NotASlot),
        };
        // Both quotients are bounded by `size()`: cpu < nr_cpus, idx < SLOTS_PER_CPU.
        let cpu = (offset / CPU_STRIDE) as u32;
        let idx = ((offset % CPU_STRIDE) / SLOT_SIZE) as usize;
        Ok(SlotId { cpu, idx })
    }

    /// Whether `addr` lies inside the window.
    #[inline]
    pub fn contains(&self, addr: VirtAddr) -> bool {
        self.slot_of(addr).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0xffff_ff00_0000_0000;

    fn layout(nr_cpus: u32) -> Layout {
        Layout::new(VirtAddr::new(BASE), nr_cpus).expect("valid layout")
    }

    #[test]
    fn slot_addr_and_slot_of_are_inverse_for_every_cpu() {
        let l = layout(MAX_CPUS);
        let mut prev_end = BASE;
        for cpu in 0..MAX_CPUS {
            for idx in 0..SLOTS_PER_CPU {
                let a = l.slot_addr(cpu, idx).unwrap();
                // Consecutive and non-overlapping: each slot starts where the
                // previous one ended, so no two (cpu, idx) share a page.
                assert_eq!(a.as_u64(), prev_end);
                prev_end += SLOT_SIZE;
                assert_eq!(l.slot_of(a).unwrap(), SlotId { cpu, idx });
                assert_eq!(l.slot_of(a + (SLOT_SIZE - 1)).unwrap(), SlotId { cpu, idx });
            }
        }
        assert_eq!(prev_end - BASE, l.size());
    }

    #[test]
    fn out_of_range_is_an_error() {
        let l = layout(4);
        assert_eq!(l.slot_addr(4, 0), Err(Error::BadCpu));
        assert_eq!(l.slot_addr(0, SLOTS_PER_CPU), Err(Error::DepthExceeded));
        assert_eq!(l.slot_of(VirtAddr::new(BASE - 1)), Err(Error::NotASlot));
        assert_eq!(
            l.slot_of(VirtAddr::new(BASE + l.size())),
            Err(Error::NotASlot)
        );
        assert_eq!(l.slot_of(VirtAddr::new(0x1000)), Err(Error::NotASlot));
    }

    #[test]
    fn bad_layouts_are_refused() {
        let bad = |base: u64, n| Layout::new(VirtAddr::new_truncate(base), n);
        assert_eq!(bad(BASE, 0), Err(Error::BadLayout));
        assert_eq!(bad(BASE, MAX_CPUS + 1), Err(Error::BadLayout));
        assert_eq!(bad(BASE + 8, 1), Err(Error::BadLayout));
        assert_eq!(bad(0x7fff_0000_0000, 1), Err(Error::BadLayout));
        // Would wrap past the top of the address space.
        assert_eq!(
            bad(u64::MAX - CPU_STRIDE + 1 - SLOT_SIZE, 2),
            Err(Error::BadLayout)
        );
        // Exactly reaching the top is fine.
        assert!(bad(u64::MAX - 2 * CPU_STRIDE + 1, 2).is_ok());
    }
}
