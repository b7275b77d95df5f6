//! Proc-macro family: the libraries a rustc maps, which attribute its events to proc-macros by
//! the return addresses on the calling thread's stack.
use super::header::RecordHeader;

/// Record kinds of the proc-macro family (`0x08nn`).
pub mod kind {
    /// A rustc process mapped a proc-macro library executable: [`super::MacroLibRecord`].
    pub const MACRO_LIB: u32 = 0x0801;
}

/// Syscall codes of this family (60..=79): only remembered between sys_enter and sys_exit,
/// never in a record.
pub mod syscall {
    /// mmap(2): watched in rustc for proc-macro libraries being mapped executable.
    pub const MMAP: u32 = 60;
}

/// Most proc-macro libraries tracked per rustc process (bits of the `callers` fields).
pub const MACRO_SLOTS: usize = 16;
/// Bytes of user stack scanned above the stack pointer for return addresses into proc-macro
/// libraries.
pub const STACK_SCAN_BYTES: usize = 1024;

/// A rustc process mapped a proc-macro library (`.../deps/lib<name>-<hash>.so`) executable.
/// Followed by `path_len` bytes of the library's path. From then on, events of that process
/// whose thread has a return address in `[start, end)` on its stack carry bit `slot` in their
/// `callers`: the proc-macro's code is on the call stack.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacroLibRecord {
    /// Header.
    pub header: RecordHeader,
    /// Slot number (0..MACRO_SLOTS).
    pub slot: u32,
    /// Bytes of path following the fixed part.
    pub path_len: u32,
    /// Start of the executable mapping.
    pub start: u64,
    /// End of the executable mapping.
    pub end: u64,
}

/// The proc-macro libraries of one rustc process, as the stack scan uses them (a map value, not
/// a ring buffer record).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MacroSlots {
    /// Slots in use.
    pub count: u32,
    /// Reserved, zero.
    pub _pad: u32,
    /// Lowest address of any slot (a quick filter).
    pub min: u64,
    /// Bytes from `min` to the end of the highest slot.
    pub span: u64,
    /// Start of each slot's executable mapping.
    pub start: [u64; MACRO_SLOTS],
    /// Length of each slot's executable mapping (0: unused slot).
    pub len: [u64; MACRO_SLOTS],
}

impl_record!(MacroLibRecord, MacroSlots);

// No implicit padding: each size is the sum of the fields'.
const _: () = assert!(size_of::<MacroLibRecord>() == size_of::<RecordHeader>() + 24);
const _: () = assert!(size_of::<MacroSlots>() == 24 + 16 * MACRO_SLOTS);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{header, round_trip};

    #[test]
    fn proc_macro_records_round_trip() {
        round_trip(MacroLibRecord {
            header: header(kind::MACRO_LIB),
            slot: 3,
            path_len: 40,
            start: 0x7f00_0000_0000,
            end: 0x7f00_0010_0000,
        });
        round_trip(MacroSlots {
            count: 1,
            min: 1,
            span: 2,
            ..Default::default()
        });
    }
}
