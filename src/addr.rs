// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Kernel virtual addresses at either paging depth.
//!
//! The `x86_64` crate's `VirtAddr` is 48-bit canonical: it cannot hold the
//! addresses a kernel with 5-level paging (LA57) uses, where vmalloc space
//! starts at `0xffa0_0000_0000_0000`. The window only ever deals with
//! kernel-half addresses, so the core has a type of its own for them,
//! checked against the depth the kernel runs at, which it is told at init
//! as it is told the physical address width.

use static_assertions::const_assert_eq;

use crate::error::{Error, Result};

/// The number of page-table levels the MMU walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PagingDepth {
    /// 4-level paging: 48-bit virtual addresses.
    Four = 4,
    /// 5-level paging (LA57): 57-bit virtual addresses.
    Five = 5,
}

impl PagingDepth {
    /// Both depths, shallowest first.
    pub const ALL: [PagingDepth; 2] = [PagingDepth::Four, PagingDepth::Five];

    /// The depth with `levels` page-table levels, as `pgtable_l5_enabled()`
    /// lets the kernel say it.
    pub const fn from_levels(levels: u8) -> Result<Self> {
        match levels {
            4 => Ok(PagingDepth::Four),
            5 => Ok(PagingDepth::Five),
            _ => Err(Error::BadPagingDepth),
        }
    }

    /// The number of page-table levels.
    pub const fn levels(self) -> u8 {
        self as u8
    }

    /// Width of a virtual address: 9 bits per level above the 12-bit offset.
    pub const fn va_bits(self) -> u32 {
        12 + 9 * self as u32
    }

    /// The lowest kernel-half address: bits `va_bits - 1` up to 63 all set.
    pub const fn kernel_half_start(self) -> u64 {
        !0u64 << (self.va_bits() - 1)
    }
}

const_assert_eq!(PagingDepth::Four.kernel_half_start(), 0xffff_8000_0000_0000);
const_assert_eq!(PagingDepth::Five.kernel_half_start(), 0xff00_0000_0000_0000);

/// A canonical address in the kernel half of the address space.
///
/// # Invariants
/// Bits `va_bits - 1` to 63 are all set for the depth the address was
/// checked at. The kernel half at 4 levels lies inside the one at 5, so an
/// address checked at 4 levels is valid at both; one checked at 5 may not be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct KernelAddr(u64);

impl KernelAddr {
    /// Checks that `addr` is a kernel-half canonical address at `depth`.
    pub const fn new(addr: u64, depth: PagingDepth) -> Result<Self> {
        if addr < depth.kernel_half_start() {
            return Err(Error::NotKernelAddr);
        }
        Ok(KernelAddr(addr))
    }

    /// The address as an integer.
    #[inline]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Whether the address is canonical at `depth` too.
    #[inline]
    pub const fn is_valid_at(self, depth: PagingDepth) -> bool {
        self.0 >= depth.kernel_half_start()
    }

    /// The address `offset` bytes higher, if that does not wrap past the top.
    #[inline]
    pub const fn checked_add(self, offset: u64) -> Option<Self> {
        match self.0.checked_add(offset) {
            // Higher than a kernel-half address and below 2^64: still one.
            Some(addr) => Some(KernelAddr(addr)),
            None => None,
        }
    }

    /// The start of the 4 KiB page holding the address.
    #[inline]
    pub const fn page_base(self) -> Self {
        // Clearing bits 0..12 leaves bits va_bits-1..64 set: still kernel-half.
        KernelAddr(self.0 & !0xfff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_half_at_each_depth() {
        let four = PagingDepth::Four;
        let five = PagingDepth::Five;
        assert!(KernelAddr::new(0xffff_8000_0000_0000, four).is_ok());
        assert_eq!(
            KernelAddr::new(0xffff_7fff_ffff_ffff, four),
            Err(Error::NotKernelAddr)
        );
        // 5-level vmalloc space is beyond the 48-bit kernel half.
        assert_eq!(
            KernelAddr::new(0xffa0_0000_0000_0000, four),
            Err(Error::NotKernelAddr)
        );
        let vmalloc = KernelAddr::new(0xffa0_0000_0000_0000, five).unwrap();
        assert!(!vmalloc.is_valid_at(four) && vmalloc.is_valid_at(five));
        assert!(KernelAddr::new(0xff00_0000_0000_0000, five).is_ok());
        assert_eq!(
            KernelAddr::new(0xfeff_ffff_ffff_ffff, five),
            Err(Error::NotKernelAddr)
        );
        assert_eq!(KernelAddr::new(0x1000, five), Err(Error::NotKernelAddr));
        // Every 4-level kernel address is a 5-level one.
        assert!(
            KernelAddr::new(0xffff_8000_0000_0000, four)
                .unwrap()
                .is_valid_at(five)
        );
    }

    #[test]
    fn depth_from_levels() {
        assert_eq!(PagingDepth::from_levels(4), Ok(PagingDepth::Four));
        assert_eq!(PagingDepth::from_levels(5), Ok(PagingDepth::Five));
        for bad in [0, 3, 6, 255] {
            assert_eq!(PagingDepth::from_levels(bad), Err(Error::BadPagingDepth));
        }
        assert_eq!(PagingDepth::Four.va_bits(), 48);
        assert_eq!(PagingDepth::Five.va_bits(), 57);
    }

    #[test]
    fn offset_and_page_base_stay_in_the_half() {
        let top = KernelAddr::new(u64::MAX, PagingDepth::Four).unwrap();
        assert_eq!(top.checked_add(1), None);
        assert_eq!(top.page_base().as_u64(), 0xffff_ffff_ffff_f000);
        let a = KernelAddr::new(0xffa0_0000_0000_0123, PagingDepth::Five).unwrap();
        assert_eq!(a.page_base().as_u64(), 0xffa0_0000_0000_0000);
        assert_eq!(
            a.checked_add(0xedd).unwrap().as_u64(),
            0xffa0_0000_0000_1000
        );
    }
}
