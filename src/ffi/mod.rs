// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The C ABI the kernel links against.
//!
//! Every function returns 0 or a negative [`Error`] code, so the glue can
//! `WARN_ON_ONCE(ret)` and fail cleanly. The glue supplies the hardware as
//! the `gmem_kmap_hw_*` functions below and passes the current CPU, because
//! the core knows nothing of Linux. The header `include/gmem_kmap_core.h` is
//! generated from this file by cbindgen.

use core::arch::asm;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::addr::{KernelAddr, PagingDepth};
use crate::cpu::{CpuId, PinCurrentCpu, PinnedCpu};
use crate::error::{Error, Result};
use crate::geometry::{Layout, Placement, SLOTS_PER_CPU, SlotAddr};
use crate::hw::SlotHardware;
use crate::pte::{Pte, PteTemplate, frame_from_pfn};
use crate::slot_stack::SlotStack;
use crate::window::Window;

mod init_once;
use init_once::InitOnce;

#[cfg(feature = "reinsert")]
mod reinsert;
#[cfg(feature = "reinsert")]
pub use reinsert::{gmem_reinsert_map, gmem_reinsert_unmap};

#[cfg(feature = "pool")]
mod pool;
#[cfg(feature = "pool")]
pub use pool::{
    gmem_pool_add_block, gmem_pool_alloc, gmem_pool_free, gmem_pool_init, gmem_pool_poison,
    gmem_pool_release, gmem_pool_stats,
};

// Provided by the kernel glue; each acts for the CPU it is called on.
unsafe extern "C" {
    /// Flushes `addr` from the local TLB (`flush_tlb_one_kernel`), where
    /// an `invlpg` of the core's own is not enough or not allowed.
    fn gmem_kmap_hw_flush_local(addr: u64);
    /// `WARN`s that the core found misuse `code` it could not return.
    fn gmem_kmap_hw_warn(code: i32);
}

/// The entries of one CPU's slots in one placement's page tables, in slot
/// order: what the glue hands the core so that a map is a store, not a call.
///
/// Atomic, because the MMU reads page tables while the core writes them;
/// a relaxed store is the kernel's `set_pte()` (`WRITE_ONCE`).
#[repr(transparent)]
struct SlotPtes([AtomicU64; SLOTS_PER_CPU]);

/// The bits a non-present kernel PTE may hold anyway: Knights Landing
/// sets Accessed and Dirty on entries it does not use
/// (`_PAGE_KNL_ERRATUM_MASK`, which `pte_none()` ignores).
const KNL_ERRATUM_MASK: u64 = (1 << 5) | (1 << 6);

impl SlotPtes {
    /// # Safety
    /// A non-null `ptes` points to the calling CPU's `SLOTS_PER_CPU` slot
    /// entries, consecutive, in page tables this CPU runs, valid for the
    /// call and written meanwhile by no other CPU.
    unsafe fn from_c<'a>(ptes: *mut u64) -> Option<&'a SlotPtes> {
        // SAFETY: forwarded from the caller; `SlotPtes` is transparent over
        // an array of `AtomicU64`, which has `u64`'s layout.
        unsafe { ptes.cast::<SlotPtes>().as_ref() }
    }

    fn entry(&self, slot: SlotAddr) -> &AtomicU64 {
        &self.0[slot.index()]
    }
}

/// How a slot leaves the local TLB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flush {
    /// The CPU may `invlpg` (not a paravirtualized guest that must ask).
    invlpg: bool,
    /// Shared slots are global, so `invlpg` drops them from every address
    /// space of this CPU. Without it (PTI) the kernel's flush also marks the
    /// other address spaces for flushing.
    shared_global: bool,
}

impl Flush {
    /// Whether `invlpg` alone drops `slot` from this CPU. A private slot is
    /// not global and in the tables of the current address space only: the
    /// mm the task maps for is the one the CPU runs until the unmap, and
    /// PTI's user tables never mirror the kernel half.
    fn by_invlpg(self, slot: SlotAddr) -> bool {
        self.invlpg && (self.shared_global || slot.placement() == Placement::Private)
    }
}

/// The hardware as the kernel glue provides it: the calling CPU's slot
/// entries in each placement (`None`: the caller has no such tables).
struct KernelHw<'a> {
    shared: Option<&'a SlotPtes>,
    private: Option<&'a SlotPtes>,
    flush: Flush,
}

impl<'a> KernelHw<'a> {
    /// # Safety
    /// As [`SlotPtes::from_c`], for each pointer.
    unsafe fn from_c(flush: Flush, shared: *mut u64, own: *mut u64) -> Self {
        // SAFETY: forwarded from the caller.
        unsafe {
            Self {
                shared: SlotPtes::from_c(shared),
                private: SlotPtes::from_c(own),
                flush,
            }
        }
    }

    #[inline(always)]
    fn ptes(&self, placement: Placement) -> Option<&'a SlotPtes> {
        // A select, not a match: a match becomes a table on the stack.
        if placement == Placement::Private {
            self.private
        } else {
            self.shared
        }
    }

    /// The entry of `slot`. The window asks [`SlotHardware::has_tables`]
    /// before it writes; should the tables still be missing, the write is
    /// dropped with a warning.
    fn entry(&mut self, slot: SlotAddr) -> Option<&'a AtomicU64> {
        let entry = self.ptes(slot.placement()).map(|ptes| ptes.entry(slot));
        if entry.is_none() {
            self.warn(Error::NullPointer);
        }
        entry
    }
}

impl SlotHardware for KernelHw<'_> {
    fn set_pte(&mut self, slot: SlotAddr, pte: Pte) {
        if let Some(entry) = self.entry(slot) {
            entry.store(pte.bits(), Ordering::Relaxed);
        }
    }

    fn clear_pte(&mut self, slot: SlotAddr) {
        if let Some(entry) = self.entry(slot) {
            entry.store(0, Ordering::Relaxed);
        }
    }

    fn pte_is_none(&self, slot: SlotAddr) -> bool {
        // Missing tables: never free to map.
        self.ptes(slot.placement())
            .is_some_and(|ptes| ptes.entry(slot).load(Ordering::Relaxed) & !KNL_ERRATUM_MASK == 0)
    }

    fn flush_local(&mut self, slot: SlotAddr) {
        if self.flush.by_invlpg(slot) {
            // Not `x86_64::instructions::tlb::flush`: its `VirtAddr` is
            // 48-bit canonical, and would truncate a 5-level slot address.
            // SAFETY: `invlpg` of any address only drops translations, and
            // the glue said this CPU may execute it.
            unsafe {
                asm!("invlpg [{}]", in(reg) slot.as_u64(), options(nostack, preserves_flags));
            }
        } else {
            // SAFETY: flushing any kernel address from the local TLB is harmless.
            unsafe { gmem_kmap_hw_flush_local(slot.as_u64()) }
        }
    }

    fn warn(&mut self, err: Error) {
        // SAFETY: a WARN with an integer argument has no precondition.
        unsafe { gmem_kmap_hw_warn(err.code()) }
    }

    fn has_tables(&self, placement: Placement) -> bool {
        self.ptes(placement).is_some()
    }
}

/// What every entry point's C caller promises: it runs on `cpu` with
/// preemption disabled for the call (and migration disabled for as long as
/// it holds slots, which `sched_in` checks).
struct CallerPinned {
    cpu: CpuId,
    _not_send: PhantomData<*const ()>,
}

impl CallerPinned {
    /// # Safety
    /// The caller runs on `cpu`, and cannot be moved off it, until the value
    /// is dropped.
    unsafe fn assume(cpu: u32) -> Self {
        CallerPinned {
            cpu: CpuId::new(cpu),
            _not_send: PhantomData,
        }
    }
}

// SAFETY: `assume`'s contract is (1) and (2); the marker makes it `!Send` (3).
unsafe impl PinCurrentCpu for CallerPinned {
    fn current_cpu(&self) -> CpuId {
        self.cpu
    }
}

/// The window and how this machine flushes a slot, set once at boot by
/// [`gmem_kmap_init`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct KernelWindow {
    window: Window,
    flush: Flush,
}

static WINDOW: InitOnce<KernelWindow> = InitOnce::new();

fn kernel_window() -> Result<&'static KernelWindow> {
    WINDOW.get().ok_or(Error::NotInitialized)
}

fn window() -> Result<&'static Window> {
    kernel_window().map(|kw| &kw.window)
}

fn status(result: Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(err) => err.code(),
    }
}

/// Turns a C pointer into a reference, refusing null.
///
/// # Safety
/// A non-null `ptr` must be valid for writes and not otherwise referenced
/// for the duration of the call.
unsafe fn from_c<'a, T>(ptr: *mut T) -> Result<&'a mut T> {
    // SAFETY: the caller guarantees validity and exclusivity when non-null.
    unsafe { ptr.as_mut() }.ok_or(Error::NullPointer)
}

/// Sets up the window: `cpus` CPUs' slots from `base`, mapped with
/// `prot` (`PAGE_KERNEL`) on a machine with `phys_bits` of physical address
/// and `levels` (4 or 5) levels of page tables; and, unless `own`
/// is 0, the same slots from `own` in each process's own page
/// tables, mapped with `prot` minus `_PAGE_GLOBAL`. With `invlpg` the core
/// flushes a slot itself where that instruction is enough; without it (a
/// paravirtualized guest, or a host test) it always asks the glue.
///
/// Call once at boot, before any other function. A second call with the same
/// values succeeds; with different ones it fails and changes nothing.
#[unsafe(no_mangle)]
pub extern "C" fn gmem_kmap_init(
    base: u64,
    cpus: u32,
    prot: u64,
    phys_bits: u8,
    levels: u8,
    own: u64,
    invlpg: bool,
) -> i32 {
    status(init(base, cpus, prot, phys_bits, levels, own, invlpg))
}

fn init(
    base: u64,
    nr_cpus: u32,
    page_kernel: u64,
    phys_bits: u8,
    levels: u8,
    private_base: u64,
    invlpg: bool,
) -> Result<()> {
    let depth = PagingDepth::from_levels(levels)?;
    let layout = Layout::new(base, nr_cpus, depth)?;
    let template = PteTemplate::new(page_kernel, phys_bits)?;
    let mut window = Window::new(layout, template);
    if private_base != 0 {
        window = window.with_private(Layout::new(private_base, nr_cpus, depth)?)?;
    }
    let flush = Flush {
        invlpg,
        shared_global: template.is_global(),
    };
    let wanted = KernelWindow { window, flush };
    if *WINDOW.get_or_set(wanted) != wanted {
        return Err(Error::AlreadyInitialized);
    }
    Ok(())
}

/// Turns a task's control block pointer into a reference, refusing null.
///
/// # Safety
/// A non-null `ctrl` must be valid for the duration of the call. It may be
/// reached meanwhile by an interrupt handler on this CPU (the stack's
/// fields are cells), but by no other CPU.
unsafe fn stack_from_c<'a>(ctrl: *mut SlotStack) -> Result<&'a SlotStack> {
    // SAFETY: the caller guarantees validity when non-null.
    unsafe { ctrl.as_ref() }.ok_or(Error::NullPointer)
}

/// What an entry point that touches slots works with.
struct Call<'a> {
    window: &'a Window,
    hw: KernelHw<'a>,
    stack: &'a SlotStack,
}

/// Runs `op` on the window, the stack behind `ctrl`, the slot entries the
/// caller handed over and the caller's CPU, as a status code.
///
/// # Safety
/// As [`stack_from_c`], [`KernelHw::from_c`] and [`CallerPinned::assume`].
#[inline(always)]
unsafe fn with_stack(
    ctrl: *mut SlotStack,
    cpu: u32,
    shared: *mut u64,
    own: *mut u64,
    op: impl FnOnce(Call<'_>, PinnedCpu<'_>) -> Result<()>,
) -> i32 {
    // SAFETY: forwarded from the caller.
    let pinned = unsafe { CallerPinned::assume(cpu) };
    let run = || {
        let kw = kernel_window()?;
        let call = Call {
            window: &kw.window,
            // SAFETY: forwarded from the caller.
            hw: unsafe { KernelHw::from_c(kw.flush, shared, own) },
            // SAFETY: forwarded from the caller.
            stack: unsafe { stack_from_c(ctrl)? },
        };
        op(call, PinnedCpu::of(&pinned))
    };
    status(run())
}

/// Maps page frame `pfn` at the next slot of `cpu` for the task owning
/// `ctrl`, in placement `place` (0 shared, 1 private), and stores the slot
/// address in `*addr`. `ptes` points to `cpu`'s `GMEM_KMAP_SLOTS_PER_CPU`
/// slot entries in that placement's page tables: `init_mm`'s for the shared one,
/// those of the mm this CPU runs for the private one.
///
/// # Safety
/// `ctrl` and `addr` are null or valid and exclusively the caller's for the
/// call, and `ptes` null or as described; the caller runs on `cpu` with
/// preemption disabled, and for the private placement in the page tables
/// of the task's own process.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_kmap_map(
    ctrl: *mut SlotStack,
    cpu: u32,
    pfn: u64,
    place: u8,
    ptes: *mut u64,
    addr: *mut u64,
) -> i32 {
    let Some(placement) = Placement::from_c(place) else {
        return Error::NoPrivateWindow.code();
    };
    let (shared, own) = match placement {
        Placement::Shared => (ptes, core::ptr::null_mut()),
        Placement::Private => (core::ptr::null_mut(), ptes),
    };
    // SAFETY: forwarded from this function's contract; the other
    // placement's entries are null.
    unsafe {
        with_stack(ctrl, cpu, shared, own, |mut call, pin| {
            let out = from_c(addr)?;
            let frame = frame_from_pfn(pfn)?;
            *out = call
                .window
                .map_in(&mut call.hw, call.stack, pin, frame, placement)?
                .as_u64();
            Ok(())
        })
    }
}

/// Unmaps the slot containing `addr`, the task's most recent mapping on
/// `cpu`. `shared` and `own` point to `cpu`'s slot entries in the shared
/// and the private placement's page tables, as for [`gmem_kmap_map`]; only
/// the one of the slot's placement is needed, and the other may be null.
///
/// # Safety
/// `ctrl` is null or valid and exclusively the caller's for the call, and
/// each entry pointer null or as described; the caller runs on `cpu` with
/// preemption disabled.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_kmap_unmap(
    ctrl: *mut SlotStack,
    cpu: u32,
    addr: u64,
    shared: *mut u64,
    own: *mut u64,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_stack(ctrl, cpu, shared, own, |mut call, pin| {
            // Not even a kernel address: certainly not a slot.
            let addr =
                KernelAddr::new(addr, call.window.paging_depth()).map_err(|_| Error::NotASlot)?;
            call.window.unmap(&mut call.hw, call.stack, pin, addr)
        })
    }
}

/// Clears the slots of the task owning `ctrl` as it is switched out on
/// `cpu`; the entry pointers are as for [`gmem_kmap_unmap`], and each
/// placement the task holds slots in needs its own.
///
/// # Safety
/// `ctrl` is null or valid for the call, each entry pointer null or as
/// described; called from the context switch.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_kmap_sched_out(
    ctrl: *mut SlotStack,
    cpu: u32,
    shared: *mut u64,
    own: *mut u64,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_stack(ctrl, cpu, shared, own, |mut call, pin| {
            call.window.sched_out(&mut call.hw, call.stack, pin)
        })
    }
}

/// Re-installs the slots of the task owning `ctrl` as it is switched in on
/// `cpu`; the entry pointers are as for [`gmem_kmap_sched_out`].
///
/// # Safety
/// As [`gmem_kmap_sched_out`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_kmap_sched_in(
    ctrl: *mut SlotStack,
    cpu: u32,
    shared: *mut u64,
    own: *mut u64,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_stack(ctrl, cpu, shared, own, |mut call, pin| {
            call.window.sched_in(&mut call.hw, call.stack, pin)
        })
    }
}

/// Empties a child's copy of its parent's control block at fork; fails if
/// the parent held slots.
///
/// # Safety
/// `ctrl` is null or valid and exclusively the caller's for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_kmap_fork(ctrl: *mut SlotStack) -> i32 {
    // SAFETY: forwarded from this function's contract.
    status(unsafe { stack_from_c(ctrl) }.and_then(SlotStack::reset_for_fork))
}

/// Releases whatever the exiting task owning `ctrl` still holds on `cpu`;
/// fails if it held anything. The entry pointers are as for
/// [`gmem_kmap_sched_out`].
///
/// # Safety
/// `ctrl` is null or valid and exclusively the caller's for the call, each
/// entry pointer null or as described; the caller runs on `cpu` with
/// preemption disabled.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_kmap_exit(
    ctrl: *mut SlotStack,
    cpu: u32,
    shared: *mut u64,
    own: *mut u64,
) -> i32 {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        with_stack(ctrl, cpu, shared, own, |mut call, pin| {
            call.window.release_at_exit(&mut call.hw, call.stack, pin)
        })
    }
}

/// Stores the address of slot `idx` of `cpu` in `placement` (0 shared, 1
/// private) in `*addr`.
///
/// # Safety
/// `addr` is null or valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gmem_kmap_slot_addr(
    cpu: u32,
    idx: u32,
    placement: u8,
    addr: *mut u64,
) -> i32 {
    let slot_addr = || -> Result<()> {
        let window = window()?;
        let placement = Placement::from_c(placement).ok_or(Error::NoPrivateWindow)?;
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { from_c(addr)? };
        *out = window
            .layout_of(placement)?
            .slot_addr(CpuId::new(cpu), idx as usize)?
            .as_u64();
        Ok(())
    };
    status(slot_addr())
}
