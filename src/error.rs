// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Every way the window can be misused, as a value.
//!
//! The core never panics: a misuse is reported, nothing is changed, and the
//! caller (the kernel glue) decides how loudly to complain. Each variant has a
//! distinct negative code so that C can `WARN_ON_ONCE` with the reason.

use core::fmt;

/// A misuse of the window or the re-insertion strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub enum Error {
    /// The window was used before `gmem_kmap_init` succeeded.
    NotInitialized = -1,
    /// The page-protection template is not a present, writable, kernel-only,
    /// 4 KiB mapping without frame bits.
    BadTemplate = -2,
    /// The page frame number lies beyond the physical address width.
    BadPfn = -3,
    /// The CPU number is not below the number of CPUs the window was built for.
    BadCpu = -4,
    /// The window's base or size does not fit the kernel address space.
    BadLayout = -5,
    /// All `SLOTS_PER_CPU` slots of this task are in use.
    DepthExceeded = -6,
    /// The address is a live slot, but not the most recent one (unmaps are LIFO).
    NotTopOfStack = -7,
    /// The address is a slot this task does not currently hold.
    SlotNotMapped = -8,
    /// The address is not inside the window.
    NotASlot = -9,
    /// The slot's PTE is already present: someone else wrote it.
    SlotBusy = -10,
    /// The task holds mappings on another CPU: it migrated while it must not.
    WrongCpu = -11,
    /// A task forked or exited while holding mappings.
    StackNotEmpty = -12,
    /// Re-insertion: the page's reference count would overflow or underflow.
    BadRefcount = -13,
    /// `gmem_kmap_init` was called again with a different configuration.
    AlreadyInitialized = -14,
    /// C passed a null pointer where the ABI needs one.
    NullPointer = -15,
    /// The paging depth is neither 4 nor 5 levels.
    BadPagingDepth = -16,
    /// The address is not in the kernel half at the window's paging depth.
    /// Only Rust sees it: the C ABI reports such an address as not a slot,
    /// or such a base as a bad layout.
    NotKernelAddr = -17,
    /// A mapping in a process's own page tables was asked for, but the
    /// window has no private placement.
    NoPrivateWindow = -18,
}

impl Error {
    /// The code handed to C: always negative, distinct per variant.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// Every variant, for tests that check the codes are distinct.
    pub const fn all() -> [Error; 18] {
        [
            Error::NotInitialized,
            Error::BadTemplate,
            Error::BadPfn,
            Error::BadCpu,
            Error::BadLayout,
            Error::DepthExceeded,
            Error::NotTopOfStack,
            Error::SlotNotMapped,
            Error::NotASlot,
            Error::SlotBusy,
            Error::WrongCpu,
            Error::StackNotEmpty,
            Error::BadRefcount,
            Error::AlreadyInitialized,
            Error::NullPointer,
            Error::BadPagingDepth,
            Error::NotKernelAddr,
            Error::NoPrivateWindow,
        ]
    }

    /// A short description, as a kernel log line would put it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Error::NotInitialized => "window used before init",
            Error::BadTemplate => "bad page-protection template",
            Error::BadPfn => "pfn beyond the physical address width",
            Error::BadCpu => "cpu out of range",
            Error::BadLayout => "window does not fit the address space",
            Error::DepthExceeded => "too many nested mappings",
            Error::NotTopOfStack => "unmap out of order",
            Error::SlotNotMapped => "unmap of a free slot",
            Error::NotASlot => "address is not a window slot",
            Error::SlotBusy => "slot PTE already present",
            Error::WrongCpu => "mappings held on another cpu",
            Error::StackNotEmpty => "mappings held at fork or exit",
            Error::BadRefcount => "re-insertion refcount out of range",
            Error::AlreadyInitialized => "window initialized twice",
            Error::NullPointer => "null pointer",
            Error::BadPagingDepth => "paging depth is not 4 or 5 levels",
            Error::NotKernelAddr => "not a kernel-half canonical address",
            Error::NoPrivateWindow => "window has no private placement",
        }
    }
}

impl fmt::Display for Error {
    #[inline]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Shorthand used throughout the crate.
pub type Result<T> = core::result::Result<T, Error>;
