// SPDX-License-Identifier: GPL-2.0 OR MIT
//! A simulated x86-64 MMU for host tests and benches (std only).
//!
//! One page table shared by all CPUs (window slots and direct-map entries), a
//! TLB per CPU that keeps every translation until it is flushed, physical
//! frames with contents, and counters for the events that cost time on real
//! hardware. A missing flush is observable: a later access through the stale
//! TLB entry reaches the old frame.

mod hw;
mod machine;

pub use hw::CpuHw;
pub use machine::{Counters, Fault, Machine};

/// `__PAGE_KERNEL` on x86-64: present, writable, accessed, dirty, global, NX.
pub const PAGE_KERNEL: u64 = 0x8000_0000_0000_0163;

/// Physical address width of the simulated machine.
pub const PHYS_BITS: u8 = 46;

/// Where the simulated direct map starts (the x86-64 4-level default).
pub const DIRECT_MAP_BASE: u64 = 0xffff_8880_0000_0000;

/// Where the simulated window starts.
pub const WINDOW_BASE: u64 = 0xffff_fe00_0000_0000;
