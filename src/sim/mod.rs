// SPDX-License-Identifier: GPL-2.0 OR MIT
//! A simulated x86-64 MMU for host tests and benches (std only).
//!
//! One page table shared by all CPUs (window slots and direct-map entries), a
//! TLB per CPU that keeps every translation until it is flushed, physical
//! frames with contents, and counters for the events that cost time on real
//! hardware. A missing flush is observable: a later access through the stale
//! TLB entry reaches the old frame. The machine runs at a paging depth, and
//! an address that is not canonical at that depth faults as on hardware.
//!
//! Speculation is modelled too: each CPU runs in some process's page
//! tables, may cache any present translation those tables reach without
//! touching it ([`Machine::speculate`]), and drops only non-global entries
//! when it switches process ([`Machine::switch_mm`]).

#[cfg(feature = "pool")]
mod direct_map;
mod hw;
mod machine;

use core::marker::PhantomData;

use static_assertions::const_assert;

#[cfg(feature = "pool")]
pub use direct_map::DirectMapSim;
pub use hw::CpuHw;
pub use machine::{Counters, Fault, Machine, MmId};

use crate::addr::{KernelAddr, PagingDepth};
use crate::cpu::{CpuId, PinCurrentCpu};
use crate::geometry::{Layout, MAX_CPUS, MAX_WINDOW_SIZE};

/// `__PAGE_KERNEL` on x86-64: present, writable, accessed, dirty, global, NX.
pub const PAGE_KERNEL: u64 = 0x8000_0000_0000_0163;

/// Physical address width of the simulated machine.
pub const PHYS_BITS: u8 = 46;

/// Where the kernel puts things at one paging depth, as
/// `Documentation/arch/x86/x86_64/mm.rst` lists them (without KASLR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressMap {
    /// Start of the direct map of all physical memory.
    pub direct_map: u64,
    /// Start of vmalloc space, where the kernel reserves the window.
    pub vmalloc: u64,
    /// Size of vmalloc space.
    pub vmalloc_size: u64,
    /// PGD entry -241, the last of the hypervisor guard hole, just below the
    /// LDT remap's (-240): empty in the kernel's own tables; each process
    /// that uses the private window gets tables of its own there.
    pub private_window: u64,
}

impl AddressMap {
    /// The map at `depth`.
    pub const fn of(depth: PagingDepth) -> Self {
        match depth {
            PagingDepth::Four => AddressMap {
                direct_map: 0xffff_8880_0000_0000,
                vmalloc: 0xffff_c900_0000_0000,
                vmalloc_size: 32 << 40,
                private_window: 0xffff_8780_0000_0000,
            },
            PagingDepth::Five => AddressMap {
                direct_map: 0xff11_0000_0000_0000,
                vmalloc: 0xffa0_0000_0000_0000,
                vmalloc_size: 12800 << 40,
                private_window: 0xff0f_0000_0000_0000,
            },
        }
    }

    /// Where the simulated window starts: the bottom of vmalloc space.
    pub const fn window_base(&self) -> u64 {
        self.vmalloc
    }

    /// Where the private window starts: the bottom of its PGD entry.
    pub const fn private_window_base(&self) -> u64 {
        self.private_window
    }
}

// The largest window fits in vmalloc space at the bottom of it, and the
// regions are kernel-half canonical, at both depths.
const fn fits(depth: PagingDepth) -> bool {
    let map = AddressMap::of(depth);
    MAX_WINDOW_SIZE <= map.vmalloc_size
        && KernelAddr::new(map.direct_map, depth).is_ok()
        && Layout::new(map.window_base(), MAX_CPUS, depth).is_ok()
        && Layout::new(map.private_window_base(), MAX_CPUS, depth).is_ok()
}
const_assert!(fits(PagingDepth::Four));
const_assert!(fits(PagingDepth::Five));
// 5-level vmalloc space is out of reach of a 4-level kernel.
const_assert!(
    KernelAddr::new(AddressMap::of(PagingDepth::Five).vmalloc, PagingDepth::Four).is_err()
);

/// A simulated context on CPU `cpu`: the simulation decides where each of
/// its steps runs, and nothing migrates behind its back.
#[derive(Debug)]
pub struct OnCpu {
    cpu: CpuId,
    _not_send: PhantomData<*const ()>,
}

impl OnCpu {
    /// A context on CPU `cpu`.
    pub fn new(cpu: u32) -> Self {
        OnCpu {
            cpu: CpuId::new(cpu),
            _not_send: PhantomData,
        }
    }
}

// SAFETY: a simulated CPU is a number the test picks; the context it stands
// for runs every step on that CPU and never moves (1, 2), and the raw
// pointer marker keeps the value on its thread (3). That the number agrees
// with the `CpuHw` a step uses is the test's job (a test may break it on
// purpose): only the simulation's state depends on it, no memory does.
unsafe impl PinCurrentCpu for OnCpu {
    fn current_cpu(&self) -> CpuId {
        self.cpu
    }
}
