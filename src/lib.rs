// SPDX-License-Identifier: GPL-2.0 OR MIT
//! gmem-kmap: a kmap_local-style per-CPU window for pages that are not in the
//! kernel's direct map.
//!
//! KVM must sometimes read or write guest_memfd pages that were removed from
//! the direct map. Instead of re-inserting a page into the shared direct map
//! (a change every CPU sees, undone with a kernel-wide TLB shootdown), the
//! window maps it at a slot only the current CPU uses and undoes it with a
//! local flush.
//!
//! - [`addr`]: kernel addresses at either paging depth.
//! - [`cpu`]: the pinned-CPU token every window operation takes.
//! - [`geometry`]: where each CPU's slots are.
//! - [`pte`]: checked protection template and entries.
//! - [`slot_stack`]: the per-task stack of live slots (C embeds it).
//! - [`window`]: map / unmap / context-switch rules.
//! - [`mapping`]: RAII guards for Rust users.
//! - [`reinsert`]: the direct-map re-insertion strategy, for comparison.
//! - `pool` (feature `pool`): pages out of the direct map in whole 2 MiB
//!   blocks, for population without a shootdown per page.
//! - [`hw`]: the only hardware the two strategies touch.
//! - `ffi` (feature `ffi`): the C ABI the kernel links.
//! - `sim` (feature `sim`, std): a simulated MMU/TLB for tests and benches.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[cfg(any(test, feature = "sim"))]
extern crate std;

pub mod addr;
pub mod cpu;
pub mod error;
pub mod geometry;
pub mod hw;
pub mod mapping;
#[cfg(feature = "pool")]
pub mod pool;
pub mod pte;
pub mod reinsert;
pub mod slot_stack;
pub mod window;

#[cfg(feature = "ffi")]
pub mod ffi;
#[cfg(feature = "sim")]
pub mod sim;

pub use addr::{KernelAddr, PagingDepth};
pub use cpu::{CpuId, PinCurrentCpu, PinnedCpu};
pub use error::{Error, Result};
pub use geometry::{Layout, Placement, SLOTS_PER_CPU, SlotAddr, SlotId};
pub use hw::{DirectMapHardware, SlotHardware};
pub use mapping::{LocalWindow, Mapping};
pub use pte::{Pte, PteTemplate, frame_from_pfn, pfn_of};
pub use reinsert::Reinsert;
pub use slot_stack::SlotStack;
pub use window::Window;
