// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Where each CPU's slots are: slot → address and back.
//!
//! The window is one contiguous, page-aligned range of kernel virtual
//! addresses, anywhere in the kernel half at the paging depth the kernel
//! runs at. CPU `c` owns the `SLOTS_PER_CPU` pages starting at
//! `base + c * SLOTS_PER_CPU * SLOT_SIZE`; slot `i` of that CPU is the `i`-th
//! page. The page tables covering the range are shared by every CPU (as the
//! fixmap is); the slots are only *logically* per-CPU.

use static_assertions::const_assert;
use x86_64::structures::paging::{PageSize, Size4KiB};

use crate::addr::{KernelAddr, PagingDepth};
use crate::cpu::CpuId;
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

/// Bytes of address space the largest window takes.
pub const MAX_WINDOW_SIZE: u64 = MAX_CPUS as u64 * CPU_STRIDE;

// The slot index must fit the control block's bookkeeping (a bit per slot
// for its placement) and a slot must be
// exactly one base page; the largest window must fit in one 1 GiB PUD entry
// so the kernel can reserve it with a handful of page tables, at either
// depth (a PUD entry maps 1 GiB at both).
const_assert!(SLOTS_PER_CPU.is_power_of_two());
const_assert!(SLOTS_PER_CPU <= 32);
const_assert!(SLOT_SIZE == 4096);
const_assert!(MAX_WINDOW_SIZE <= 1 << 30);
// The largest window fits in the kernel half at both depths (the 4-level
// half is the smaller), so `new` can place one at any depth.
const_assert!(MAX_WINDOW_SIZE <= 0u64.wrapping_sub(PagingDepth::Four.kernel_half_start()));
const_assert!(PagingDepth::Four.kernel_half_start() > PagingDepth::Five.kernel_half_start());

/// Where a mapping's slot entry lives.
///
/// The two placements have the same geometry at different bases: slot `i`
/// of CPU `c` is at the same offset in both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(C)]
pub enum Placement {
    /// In the kernel page tables every process shares (`init_mm`'s): any
    /// CPU may cache the entry, whatever it runs.
    #[default]
    Shared = 0,
    /// In page tables of the current process's own, without `_PAGE_GLOBAL`
    /// (the mermap model): only CPUs running that process can reach it.
    Private = 1,
}

impl Placement {
    /// The placement a C caller named: 0 shared, 1 private.
    pub const fn from_c(value: u8) -> Option<Self> {
        match value {
            0 => Some(Placement::Shared),
            1 => Some(Placement::Private),
            _ => None,
        }
    }
}

/// A page-aligned address of a window slot, with the slot's index and
/// placement.
///
/// Only a [`Layout`] makes one, so the hardware traits can take it as proof
/// that the address is well-formed: slot [`index`](Self::index) of some
/// CPU in a checked layout of [`placement`](Self::placement), page-aligned,
/// in the kernel half of the depth that layout was made for. It does not
/// prove the slot is the caller's, or that of the window the hardware
/// serves: the kernel's hardware checks its own CPU's entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotAddr {
    addr: KernelAddr,
    idx: u8,
    placement: Placement,
}

impl SlotAddr {
    /// The slot's address.
    #[inline]
    pub const fn addr(self) -> KernelAddr {
        self.addr
    }

    /// The slot's address as an integer.
    #[inline]
    pub const fn as_u64(self) -> u64 {
        self.addr.as_u64()
    }

    /// The slot's position in its CPU's slots, below [`SLOTS_PER_CPU`].
    #[inline]
    pub const fn index(self) -> usize {
        self.idx as usize % SLOTS_PER_CPU
    }

    /// Which page tables hold the slot's entry.
    #[inline]
    pub const fn placement(self) -> Placement {
        self.placement
    }
}

/// A validated window: base address and the number of CPUs it serves.
///
/// # Invariants
/// - `base` is page-aligned and kernel-half canonical at `depth`;
/// - `1 <= nr_cpus <= MAX_CPUS` and `size == nr_cpus * CPU_STRIDE`;
/// - `base + size - 1` does not wrap, so every address in the window is
///   kernel-half canonical at `depth` too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    base: KernelAddr,
    nr_cpus: u32,
    /// `nr_cpus * CPU_STRIDE`, kept because every unmap needs it.
    size: u64,
    depth: PagingDepth,
    /// Which page tables hold the slots' entries.
    placement: Placement,
}

/// A CPU's slot, as found from an address inside the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotId {
    /// The CPU that owns the slot.
    pub cpu: CpuId,
    /// The slot's position in that CPU's stack (0 = first mapped).
    pub idx: usize,
}

impl Layout {
    /// Checks that `nr_cpus` windows of `SLOTS_PER_CPU` pages fit at `base`
    /// in a kernel that runs at `depth`.
    ///
    /// `base` must be page-aligned, in the kernel half at `depth`, and the
    /// whole window must end at or below the top of the address space.
    pub const fn new(base: u64, nr_cpus: u32, depth: PagingDepth) -> Result<Self> {
        if nr_cpus == 0 || nr_cpus > MAX_CPUS || !base.is_multiple_of(SLOT_SIZE) {
            return Err(Error::BadLayout);
        }
        let Ok(base) = KernelAddr::new(base, depth) else {
            return Err(Error::BadLayout);
        };
        let size = nr_cpus as u64 * CPU_STRIDE;
        // `base + size` may be exactly 2^64 (window at the very top).
        if base.checked_add(size - 1).is_none() {
            return Err(Error::BadLayout);
        }
        Ok(Self {
            base,
            nr_cpus,
            size,
            depth,
            placement: Placement::Shared,
        })
    }

    /// The same slots with their entries in `placement`'s page tables
    /// ([`new`](Self::new) makes shared ones).
    #[inline]
    pub const fn in_placement(self, placement: Placement) -> Self {
        Self { placement, ..self }
    }

    /// Which page tables hold the slots' entries.
    #[inline]
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// First address of the window.
    #[inline]
    pub fn base(&self) -> KernelAddr {
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

    /// The paging depth the window was laid out for.
    #[inline]
    pub fn paging_depth(&self) -> PagingDepth {
        self.depth
    }

    /// Address of slot `idx` of CPU `cpu`.
    #[inline]
    pub fn slot_addr(&self, cpu: CpuId, idx: usize) -> Result<SlotAddr> {
        if cpu.as_u32() >= self.nr_cpus {
            return Err(Error::BadCpu);
        }
        if idx >= SLOTS_PER_CPU {
            return Err(Error::DepthExceeded);
        }
        let offset = u64::from(cpu.as_u32()) * CPU_STRIDE + idx as u64 * SLOT_SIZE;
        // `offset < size`, and the whole window is below 2^64 (invariant).
        match self.base.checked_add(offset) {
            Some(addr) => Ok(self.slot(addr, idx)),
            None => Err(Error::BadLayout),
        }
    }

    /// The slot at `addr`, which is slot `idx` of some CPU of this layout.
    #[inline]
    const fn slot(&self, addr: KernelAddr, idx: usize) -> SlotAddr {
        SlotAddr {
            addr,
            idx: idx as u8,
            placement: self.placement,
        }
    }

    /// The slot containing `addr` (any offset inside the slot's page).
    #[inline]
    pub fn slot_of(&self, addr: KernelAddr) -> Result<SlotId> {
        self.locate(addr).map(|(id, _)| id)
    }

    /// The address of the slot containing `addr`.
    #[inline]
    pub fn slot_base(&self, addr: KernelAddr) -> Result<SlotAddr> {
        self.locate(addr).map(|(_, slot)| slot)
    }

    /// The slot containing `addr`: whose it is, and where it starts.
    #[inline]
    pub(crate) fn locate(&self, addr: KernelAddr) -> Result<(SlotId, SlotAddr)> {
        let offset = match addr.as_u64().checked_sub(self.base.as_u64()) {
            Some(off) if off < self.size => off,
            _ => return Err(Error::NotASlot),
        };
        // Both quotients are bounded by `size()`: cpu < nr_cpus, idx < SLOTS_PER_CPU.
        let cpu = CpuId::new((offset / CPU_STRIDE) as u32);
        let idx = ((offset % CPU_STRIDE) / SLOT_SIZE) as usize;
        // In the window, whose slots are its pages: the page is the slot.
        Ok((SlotId { cpu, idx }, self.slot(addr.page_base(), idx)))
    }

    /// Whether `addr` lies inside the window.
    #[inline]
    pub fn contains(&self, addr: KernelAddr) -> bool {
        self.slot_of(addr).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the kernel's vmalloc space starts at each depth, and the top of
    /// the address space: a window at the lowest and highest place it can be.
    fn bases(depth: PagingDepth) -> [u64; 2] {
        let vmalloc = match depth {
            PagingDepth::Four => 0xffff_c900_0000_0000,
            PagingDepth::Five => 0xffa0_0000_0000_0000,
        };
        [vmalloc, 0u64.wrapping_sub(MAX_WINDOW_SIZE)]
    }

    fn addr(a: u64, depth: PagingDepth) -> KernelAddr {
        KernelAddr::new(a, depth).unwrap()
    }

    #[test]
    fn slot_addr_and_slot_of_are_inverse_for_every_cpu_at_both_depths() {
        for depth in PagingDepth::ALL {
            for base in bases(depth) {
                let l = Layout::new(base, MAX_CPUS, depth).expect("valid layout");
                let mut prev_end = base;
                for cpu in (0..MAX_CPUS).map(CpuId::new) {
                    for idx in 0..SLOTS_PER_CPU {
                        let a = l.slot_addr(cpu, idx).unwrap();
                        // Consecutive and non-overlapping: each slot starts
                        // where the previous one ended.
                        assert_eq!(a.as_u64(), prev_end);
                        assert!(a.addr().is_valid_at(depth));
                        prev_end = prev_end.wrapping_add(SLOT_SIZE);
                        let last = a.addr().checked_add(SLOT_SIZE - 1).unwrap();
                        assert_eq!(l.slot_of(a.addr()).unwrap(), SlotId { cpu, idx });
                        assert_eq!(l.slot_of(last).unwrap(), SlotId { cpu, idx });
                        assert_eq!(l.slot_base(last), Ok(a));
                    }
                }
                assert_eq!(prev_end.wrapping_sub(base), l.size());
            }
        }
    }

    #[test]
    fn out_of_range_is_an_error() {
        for depth in PagingDepth::ALL {
            let base = bases(depth)[0];
            let l = Layout::new(base, 4, depth).unwrap();
            assert_eq!(l.slot_addr(CpuId::new(4), 0), Err(Error::BadCpu));
            assert_eq!(
                l.slot_addr(CpuId::new(0), SLOTS_PER_CPU),
                Err(Error::DepthExceeded)
            );
            assert_eq!(l.slot_of(addr(base - 1, depth)), Err(Error::NotASlot));
            assert_eq!(
                l.slot_of(addr(base + l.size(), depth)),
                Err(Error::NotASlot)
            );
            assert_eq!(
                l.slot_base(addr(base + l.size(), depth)),
                Err(Error::NotASlot)
            );
        }
    }

    #[test]
    fn bad_layouts_are_refused() {
        let four = PagingDepth::Four;
        let five = PagingDepth::Five;
        let base = bases(four)[0];
        assert_eq!(Layout::new(base, 0, four), Err(Error::BadLayout));
        assert_eq!(Layout::new(base, MAX_CPUS + 1, four), Err(Error::BadLayout));
        assert_eq!(Layout::new(base + 8, 1, four), Err(Error::BadLayout));
        assert_eq!(
            Layout::new(0x7fff_0000_0000, 1, five),
            Err(Error::BadLayout)
        );
        // 5-level vmalloc space is not canonical with 4 levels.
        assert_eq!(Layout::new(bases(five)[0], 1, four), Err(Error::BadLayout));
        assert!(Layout::new(bases(five)[0], 1, five).is_ok());
        assert_eq!(
            Layout::new(0xfe00_0000_0000_0000, 1, five),
            Err(Error::BadLayout)
        );
        // Would wrap past the top of the address space.
        assert_eq!(
            Layout::new(u64::MAX - CPU_STRIDE + 1 - SLOT_SIZE, 2, four),
            Err(Error::BadLayout)
        );
        // Exactly reaching the top is fine.
        assert!(Layout::new(u64::MAX - 2 * CPU_STRIDE + 1, 2, four).is_ok());
    }
}
