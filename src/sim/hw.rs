// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The simulated machine as one CPU sees it: both hardware traits.

use x86_64::structures::paging::{PhysFrame, Size4KiB};

use super::Machine;
use crate::addr::KernelAddr;
use crate::error::Error;
use crate::geometry::SlotAddr;
use crate::hw::{DirectMapHardware, SlotHardware};
use crate::pte::Pte;

/// The machine's hardware as seen from one CPU.
pub struct CpuHw<'m> {
    machine: &'m mut Machine,
    cpu: u32,
}

impl<'m> CpuHw<'m> {
    pub(super) fn new(machine: &'m mut Machine, cpu: u32) -> Self {
        Self { machine, cpu }
    }

    /// The CPU this handle acts for.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }

    /// The whole machine, e.g. to access memory through a mapping.
    pub fn machine(&mut self) -> &mut Machine {
        self.machine
    }

    /// Loads from `addr` on this CPU.
    pub fn read(&mut self, addr: KernelAddr, buf: &mut [u8]) -> Result<(), super::Fault> {
        self.machine.read(self.cpu, addr, buf)
    }

    /// Stores to `addr` on this CPU.
    pub fn write(&mut self, addr: KernelAddr, data: &[u8]) -> Result<(), super::Fault> {
        self.machine.write(self.cpu, addr, data)
    }

    /// Drops any translation of `addr` from this CPU's TLB.
    pub fn flush_addr(&mut self, addr: KernelAddr) {
        self.machine.flush_local(self.cpu, addr);
    }
}

impl SlotHardware for CpuHw<'_> {
    fn set_pte(&mut self, slot: SlotAddr, pte: Pte) {
        self.machine.write_slot_pte(self.cpu, slot.addr(), pte);
    }

    fn clear_pte(&mut self, slot: SlotAddr) {
        self.machine
            .write_slot_pte(self.cpu, slot.addr(), Pte::NONE);
    }

    fn pte_is_none(&self, slot: SlotAddr) -> bool {
        self.machine.slot_pte(self.cpu, slot.addr()).is_none()
    }

    fn flush_local(&mut self, slot: SlotAddr) {
        self.flush_addr(slot.addr());
    }

    fn warn(&mut self, err: Error) {
        self.machine.warn(err);
    }
}

impl DirectMapHardware for CpuHw<'_> {
    fn direct_map_present(&mut self, frame: PhysFrame<Size4KiB>) {
        let pte = self
            .machine
            .template()
            .pte(frame)
            .expect("frame of this machine");
        let addr = self.machine.direct_map_addr(frame);
        self.machine.write_pte(addr, pte);
    }

    fn direct_map_absent(&mut self, frame: PhysFrame<Size4KiB>) {
        let addr = self.machine.direct_map_addr(frame);
        self.machine.write_pte(addr, Pte::NONE);
    }

    fn flush_all(&mut self, frame: PhysFrame<Size4KiB>) {
        let addr = self.machine.direct_map_addr(frame);
        self.machine.flush_all(addr);
    }
}
