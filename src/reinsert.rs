// SPDX-License-Identifier: GPL-2.0 OR MIT
//! The re-insertion strategy (option 3 of the direct-map-removal RFC), kept
//! on the same footing as the window so the two can be compared.
//!
//! Mapping makes the page's own direct-map entry present; the last unmap makes
//! it absent again and flushes it from every CPU's TLB. The caller reaches the
//! page at its direct-map address. Concurrent users of one page share the
//! entry through a per-page count that the caller serializes (the `&mut`).

use x86_64::structures::paging::{PhysFrame, Size4KiB};

use crate::error::{Error, Result};
use crate::hw::DirectMapHardware;
use crate::pte::PteTemplate;

/// Re-insertion of frames into the direct map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reinsert {
    template: PteTemplate,
}

impl Reinsert {
    /// Re-insertion for frames below `template`'s physical address width.
    pub const fn new(template: PteTemplate) -> Self {
        Self { template }
    }

    /// Makes `frame` reachable through the direct map; `users` counts the
    /// current users of the frame and is held exclusively by the caller.
    pub fn map<H: DirectMapHardware>(
        &self,
        hw: &mut H,
        frame: PhysFrame<Size4KiB>,
        users: &mut u32,
    ) -> Result<()> {
        self.template.pte(frame)?;
        let now = users.checked_add(1).ok_or(Error::BadRefcount)?;
        if *users == 0 {
            hw.direct_map_present(frame);
        }
        *users = now;
        Ok(())
    }

    /// Drops one user of `frame`; the last one removes it from the direct
    /// map and shoots the translation down on every CPU.
    pub fn unmap<H: DirectMapHardware>(
        &self,
        hw: &mut H,
        frame: PhysFrame<Size4KiB>,
        users: &mut u32,
    ) -> Result<()> {
        self.template.pte(frame)?;
        *users = users.checked_sub(1).ok_or(Error::BadRefcount)?;
        if *users == 0 {
            hw.direct_map_absent(frame);
            hw.flush_all(frame);
        }
        Ok(())
    }
}
