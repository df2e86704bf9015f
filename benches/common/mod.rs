// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Hardware that does nothing, so the benches measure the core's
//! bookkeeping alone, and a ready window.

use gmem_kmap::{DirectMapHardware, Layout, Pte, PteTemplate, SlotHardware, SlotStack, Window};
use x86_64::VirtAddr;
use x86_64::structures::paging::{PhysFrame, Size4KiB};

/// Every hardware call is an empty inline function.
pub struct NoopHw;

impl SlotHardware for NoopHw {
    fn set_pte(&mut self, _: VirtAddr, _: Pte) {}
    fn clear_pte(&mut self, _: VirtAddr) {}
    fn read_pte(&self, _: VirtAddr) -> Pte {
        Pte::NONE
    }
    fn flush_local(&mut self, _: VirtAddr) {}
}

impl DirectMapHardware for NoopHw {
    fn direct_map_present(&mut self, _: PhysFrame<Size4KiB>) {}
    fn direct_map_absent(&mut self, _: PhysFrame<Size4KiB>) {}
    fn flush_all(&mut self, _: PhysFrame<Size4KiB>) {}
}

/// A 64-CPU window with the kernel's template, as the kernel would set it
/// up. Opaque to the optimiser, as a window set up at boot is: its fields
/// are loaded, not folded into constants.
pub fn window() -> Window {
    let layout = Layout::new(VirtAddr::new(0xffff_fe00_0000_0000), 64).unwrap();
    std::hint::black_box(Window::new(
        layout,
        PteTemplate::new(0x8000_0000_0000_0163, 46).unwrap(),
    ))
}

/// A stack already holding `depth - 1` mappings on CPU 0, so the next pair
/// runs at `depth`.
pub fn stack_at(window: &Window, depth: usize) -> SlotStack {
    let stack = SlotStack::new();
    for pfn in 0..depth as u64 - 1 {
        window
            .map(
                &mut NoopHw,
                &stack,
                0,
                gmem_kmap::frame_from_pfn(pfn).unwrap(),
            )
            .unwrap();
    }
    stack
}
