// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Hardware that does nothing, so the benches measure the core's
//! bookkeeping alone, and a ready window.

use gmem_kmap::{
    CpuId, DirectMapHardware, Error, Layout, PagingDepth, PinCurrentCpu, Pte, PteTemplate,
    SlotAddr, SlotHardware, SlotStack, Window,
};
use x86_64::structures::paging::{PhysFrame, Size4KiB};

/// Every hardware call is an empty inline function.
pub struct NoopHw;

impl SlotHardware for NoopHw {
    fn set_pte(&mut self, _: SlotAddr, _: Pte) {}
    fn clear_pte(&mut self, _: SlotAddr) {}
    fn pte_is_none(&self, _: SlotAddr) -> bool {
        true
    }
    fn flush_local(&mut self, _: SlotAddr) {}
    fn warn(&mut self, _: Error) {}
}

impl DirectMapHardware for NoopHw {
    fn direct_map_present(&mut self, _: PhysFrame<Size4KiB>) {}
    fn direct_map_absent(&mut self, _: PhysFrame<Size4KiB>) {}
    fn flush_all(&mut self, _: PhysFrame<Size4KiB>) {}
}

/// The bench's thread, which stands for CPU 0.
pub struct Cpu0(std::marker::PhantomData<*const ()>);

impl Cpu0 {
    pub fn new() -> Self {
        Cpu0(std::marker::PhantomData)
    }
}

// SAFETY: the benches drive no-op hardware from one thread that stands for
// CPU 0 throughout (1, 2); the marker makes it `!Send` (3).
unsafe impl PinCurrentCpu for Cpu0 {
    fn current_cpu(&self) -> CpuId {
        CpuId::new(0)
    }
}

/// The 5-level vmalloc base: the window's home on the newest servers.
pub const WINDOW_BASE: u64 = 0xffa0_0000_0000_0000;
/// The levels the benches' window is laid out for.
pub const LEVELS: u8 = 5;

/// A 64-CPU window with the kernel's template, as the kernel would set it
/// up. Opaque to the optimiser, as a window set up at boot is: its fields
/// are loaded, not folded into constants.
pub fn window() -> Window {
    let depth = PagingDepth::from_levels(LEVELS).unwrap();
    let layout = Layout::new(WINDOW_BASE, 64, depth).unwrap();
    std::hint::black_box(Window::new(
        layout,
        PteTemplate::new(0x8000_0000_0000_0163, 46).unwrap(),
    ))
}

/// A stack already holding `depth - 1` mappings on CPU 0, so the next pair
/// runs at `depth`.
pub fn stack_at(window: &Window, cpu: &Cpu0, depth: usize) -> SlotStack {
    let stack = SlotStack::new();
    for pfn in 0..depth as u64 - 1 {
        window
            .map(
                &mut NoopHw,
                &stack,
                cpu.pin(),
                gmem_kmap::frame_from_pfn(pfn).unwrap(),
            )
            .unwrap();
    }
    stack
}
