// SPDX-License-Identifier: GPL-2.0 OR MIT
//! Proof that the caller stays on one CPU.
//!
//! A slot belongs to a CPU, so every window operation needs to know which
//! CPU it runs on and that it will not be moved off it halfway. Instead of a
//! CPU number and a comment, the operations take a [`PinnedCpu`], which only
//! a guard implementing [`PinCurrentCpu`] can produce (as `ostd`'s
//! `PinCurrentCpu` guards do): the kernel's migrate-disable section, an IRQ
//! handler, or the simulator's CPU.
//!
//! Implementing the trait is `unsafe`, so a safe caller cannot make one up:
//!
//! ```compile_fail,E0200
//! use gmem_kmap::{CpuId, PinCurrentCpu};
//! struct Liar;
//! impl PinCurrentCpu for Liar {
//!     fn current_cpu(&self) -> CpuId {
//!         CpuId::new(3)
//!     }
//! }
//! ```
//!
//! and a bare CPU number is not a pin:
//!
//! ```compile_fail,E0308
//! # use gmem_kmap::*;
//! # struct Hw;
//! # impl SlotHardware for Hw {
//! #     fn set_pte(&mut self, _: SlotAddr, _: Pte) {}
//! #     fn clear_pte(&mut self, _: SlotAddr) {}
//! #     fn pte_is_none(&self, _: SlotAddr) -> bool { true }
//! #     fn flush_local(&mut self, _: SlotAddr) {}
//! #     fn warn(&mut self, err: Error) { panic!("{err}") }
//! # }
//! # let layout = Layout::new(0xffa0_0000_0000_0000, 1, PagingDepth::Five).unwrap();
//! # let window = Window::new(layout, PteTemplate::new(0x8000_0000_0000_0163, 46).unwrap());
//! let stack = SlotStack::new();
//! let slot = window.map(&mut Hw, &stack, 0, frame_from_pfn(1).unwrap());
//! ```

use core::marker::PhantomData;

use static_assertions::assert_not_impl_any;

/// A CPU number, as the kernel's `smp_processor_id()` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct CpuId(u32);

impl CpuId {
    /// CPU number `cpu`. Naming a CPU proves nothing: see [`PinnedCpu`].
    #[inline]
    pub const fn new(cpu: u32) -> Self {
        CpuId(cpu)
    }

    /// The number.
    #[inline]
    pub const fn as_u32(self) -> u32 {
        self.0
    }
}

/// A guard under which the current context cannot change CPU.
///
/// # Safety
/// An implementor promises, for as long as a value of it lives:
/// 1. the context holding it runs on [`current_cpu`](Self::current_cpu),
///    which is the same on every call;
/// 2. that context is not migrated to another CPU (migration, preemption or
///    interrupts are disabled, or it is an interrupt handler);
/// 3. the value cannot be sent to another thread (it is `!Send`).
pub unsafe trait PinCurrentCpu {
    /// The CPU the context runs on.
    fn current_cpu(&self) -> CpuId;

    /// The token for this CPU, valid while the guard is borrowed.
    fn pin(&self) -> PinnedCpu<'_>
    where
        Self: Sized,
    {
        PinnedCpu::of(self)
    }
}

/// The current CPU, valid while the guard it was taken from lives.
///
/// It cannot outlive the guard:
///
/// ```compile_fail,E0505
/// # use gmem_kmap::{CpuId, PinCurrentCpu, PinnedCpu};
/// # struct MigrationDisabled;
/// # // SAFETY: a doctest has one thread, which stands for CPU 0.
/// # unsafe impl PinCurrentCpu for MigrationDisabled {
/// #     fn current_cpu(&self) -> CpuId { CpuId::new(0) }
/// # }
/// let guard = MigrationDisabled;
/// let pin = PinnedCpu::of(&guard);
/// drop(guard); // error[E0505]: migration is enabled again...
/// let cpu = pin.cpu(); // ...while the pin is still in use
/// ```
///
/// # Invariants
/// The context holding the token runs on `cpu` and stays there for `'g`,
/// because a [`PinCurrentCpu`] guard is borrowed for `'g`; the token is
/// neither `Send` nor `Sync`, so no other thread holds it.
#[derive(Clone, Copy, Debug)]
pub struct PinnedCpu<'g> {
    cpu: CpuId,
    /// Borrows the guard; `*const` keeps the token on this thread.
    _guard: PhantomData<&'g *const ()>,
}

assert_not_impl_any!(PinnedCpu<'static>: Send, Sync);

impl<'g> PinnedCpu<'g> {
    /// The CPU `guard` pins the context to.
    #[inline]
    pub fn of<G: PinCurrentCpu>(guard: &'g G) -> Self {
        PinnedCpu {
            cpu: guard.current_cpu(),
            _guard: PhantomData,
        }
    }

    /// The CPU.
    #[inline]
    pub fn cpu(self) -> CpuId {
        self.cpu
    }
}
