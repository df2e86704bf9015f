// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The simulated hardware, with faults that can be planted on purpose.

use gmem_kmap::sim::CpuHw;
use gmem_kmap::{DirectMapHardware, Error, Pte, SlotAddr, SlotHardware};
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
    fn set_pte(&mut self, slot: SlotAddr, pte: Pte) {
        self.inner.set_pte(slot, pte)
    }

    fn clear_pte(&mut self, slot: SlotAddr) {
        self.inner.clear_pte(slot)
    }

    fn pte_is_none(&self, slot: SlotAddr) -> bool {
        self.inner.pte_is_none(slot)
    }

    fn flush_local(&mut self, slot: SlotAddr) {
        if !self.faults.skip_local_flush {
            self.inner.flush_local(slot)
        }
    }

    fn warn(&mut self, err: Error) {
        self.inner.warn(err)
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
            let addr = self.inner.machine().direct_map_addr(frame);
            self.inner.flush_addr(addr)
        } else {
            self.inner.flush_all(frame)
        }
    }
}
