// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The simulated hardware, with faults that can be planted on purpose.

use gmem_kmap::sim::CpuHw;
use gmem_kmap::{DirectMapHardware, Pte, SlotHardware};
use x86_64::VirtAddr;
use x86_64::structures::paging::{PhysFrame, Size4KiB};

/// Hardware bugs the model must notice.
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// `flush_local` does nothing.
    pub skip_local_flush: bool,
    /// `flush_all` flushes only the calling CPU.
    pub local_only_global_flush: bool,
}

/// One CPU's hardware, possibly faulty.
pub struct Hw<'m> {
    pub inner: CpuHw<'m>,
    pub faults: Faults,
}

impl SlotHardware for Hw<'_> {
    fn set_pte(&mut self, addr: VirtAddr, pte: Pte) {
        self.inner.set_pte(addr, pte)
    }

    fn clear_pte(&mut self, addr: VirtAddr) {
        self.inner.clear_pte(addr)
    }

    fn read_pte(&self, addr: VirtAddr) -> Pte {
        self.inner.read_pte(addr)
    }

    fn flush_local(&mut self, addr: VirtAddr) {
        if !self.faults.skip_local_flush {
            self.inner.flush_local(addr)
        }
    }
}

impl DirectMapHardware for Hw<'_> {
    fn direct_map_present(&mut self, frame: PhysFrame<Size4KiB>) {
        self.inner.direct_map_present(frame)
    }

    fn direct_map_absent(&mut self, frame: PhysFrame<Size4KiB>) {
        self.inner.direct_map_absent(frame)
    }

    fn flush_all(&mut self, frame: PhysFrame<Size4KiB>) {
        if self.faults.local_only_global_flush {
            let addr = gmem_kmap::sim::Machine::direct_map_addr(frame);
            self.inner.flush_local(addr)
        } else {
            self.inner.flush_all(frame)
        }
    }
}
