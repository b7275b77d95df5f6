//! The records, one module per family. Each family module holds its records, their record kind
//! numbers (`kind`), the syscall codes its records carry (`syscall`), their `Record`/`Pod`
//! impls, size assertions and round-trip tests.
//!
//! Adding a record: put it in its family's file (or a new one), give it the next kind number of
//! that family's range, list the kind in [`kind`] below and the record in the family's
//! `impl_record!`.

/// Implements [`Record`] (and `aya::Pod` in userspace) for record types.
///
/// Every type given must be `#[repr(C)]` with integer and byte-array fields only and no
/// implicit padding; each family file asserts the sizes that prove the last point.
macro_rules! impl_record {
    ($($t:ty),* $(,)?) => {
        $(
            // SAFETY: see the macro: #[repr(C)], integer and byte-array fields only, no implicit
            // padding (sizes asserted next to the type), so every bit pattern is a valid value.
            unsafe impl crate::records::Record for $t {}
            // SAFETY: the same contract as `Record`, just above.
            #[cfg(feature = "user")]
            unsafe impl aya::Pod for $t {}
        )*
    };
}

pub mod compat;
pub mod dns;
pub mod file;
pub mod flag;
pub mod guard;
pub mod header;
pub mod io_uring;
pub mod kill;
pub mod net;
pub mod offsets;
pub mod proc_macro;
pub mod process;
pub mod protected;
pub mod raw_socket;
pub mod tamper;

/// Indices of the per-CPU loss counters (family "loss": there is no loss record, userspace reads
/// the counters).
pub mod counter;

/// Record kinds (`RecordHeader::kind`), grouped by family: `0x01nn` process, `0x02nn` file,
/// `0x03nn` net, `0x04nn` dns, `0x05nn` tamper, `0x06nn` io_uring, `0x07nn` compat, `0x08nn`
/// proc-macro, `0x09nn` kill, `0x0Bnn` raw socket.
pub mod kind {
    pub use super::compat::kind::*;
    pub use super::dns::kind::*;
    pub use super::file::kind::*;
    pub use super::io_uring::kind::*;
    pub use super::kill::kind::*;
    pub use super::net::kind::*;
    pub use super::proc_macro::kind::*;
    pub use super::process::kind::*;
    pub use super::raw_socket::kind::*;
    pub use super::tamper::kind::*;
}

/// Which system call produced a record (`OpenRecord::syscall`, `ConnectRecord::syscall`,
/// `TamperRecord::syscall`), or is under way (mmap). One number space across families: the sensor's pending-syscall map
/// stores these codes without the record kind.
pub mod syscall {
    pub use super::file::syscall::*;
    pub use super::net::syscall::*;
    pub use super::proc_macro::syscall::*;
    pub use super::raw_socket::syscall::*;
    pub use super::tamper::syscall::*;
}

/// A record type that can be viewed as, and rebuilt from, its exact bytes.
///
/// # Safety
/// Implementors must be `#[repr(C)]`, contain only integers and byte arrays and have no implicit
/// padding, so that every byte pattern of `size_of::<Self>()` bytes is a valid value.
pub unsafe trait Record: Copy + 'static {
    /// The record's bytes, as the kernel writes them.
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: the trait's contract: no padding, so all bytes are initialised.
        unsafe {
            core::slice::from_raw_parts((self as *const Self).cast::<u8>(), size_of::<Self>())
        }
    }

    /// Reads a record from the start of `bytes` (unaligned), or `None` if it is too short.
    fn read_from(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < size_of::<Self>() {
            return None;
        }
        // SAFETY: length checked above; read_unaligned copes with any alignment; the trait's
        // contract makes every bit pattern valid.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<Self>()) })
    }
}

/// Interprets a NUL-padded byte array (a `comm`) as text, up to the first NUL.
pub fn c_bytes(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// Helpers for the families' round-trip tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Record, header::RecordHeader};

    /// A header with every field set to something recognisable.
    pub fn header(kind: u32) -> RecordHeader {
        RecordHeader {
            kind,
            size: 0x1234,
            time_ns: 0x0102_0304_0506_0708,
            tgid: 42,
            tid: 43,
            comm: *b"build-script-bu\0",
        }
    }

    /// `rec` survives being written out and read back, from an unaligned position too, and a
    /// short buffer is refused.
    pub fn round_trip<R: Record + PartialEq + core::fmt::Debug>(rec: R) {
        let bytes = rec.as_bytes();
        assert_eq!(bytes.len(), size_of::<R>());
        let mut shifted = [0u8; 1024];
        shifted[1..=bytes.len()].copy_from_slice(bytes);
        assert_eq!(R::read_from(&shifted[1..=bytes.len()]), Some(rec));
        assert_eq!(R::read_from(&bytes[..bytes.len() - 1]), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind, with the family its number range says it belongs to.
    const KINDS: [(u32, u32); 11] = [
        (kind::FORK, 0x01),
        (kind::EXEC, 0x01),
        (kind::EXIT, 0x01),
        (kind::OPEN, 0x02),
        (kind::CONNECT, 0x03),
        (kind::DNS, 0x04),
        (kind::TAMPER, 0x05),
        (kind::IO_URING, 0x06),
        (kind::COMPAT, 0x07),
        (kind::MACRO_LIB, 0x08),
        (kind::KILL, 0x09),
    ];

    #[test]
    fn kinds_are_unique_and_in_their_family_range() {
        for (i, (a, family)) in KINDS.iter().enumerate() {
            assert_eq!(a >> 8, *family, "kind {a:#x}");
            assert_ne!(a & 0xff, 0, "kind {a:#x}: 0 is no record");
            for (b, _) in &KINDS[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn syscall_codes_are_unique() {
        let codes = [
            syscall::OPENAT,
            syscall::OPENAT2,
            syscall::OPEN,
            syscall::CREAT,
            syscall::OPEN_BY_HANDLE_AT,
            syscall::RENAME,
            syscall::LINK,
            syscall::SYMLINK,
            syscall::RENAME_SOURCE,
            syscall::LINK_SOURCE,
            syscall::CONNECT,
            syscall::SENDTO,
            syscall::SENDMSG,
            syscall::SENDMMSG,
            syscall::FASTOPEN,
            syscall::CGROUP_CONNECT,
            syscall::CGROUP_SENDMSG,
            syscall::COMPAT_CONNECT,
            syscall::COMPAT_SENDMSG,
            syscall::PTRACE,
            syscall::PROCESS_VM_WRITEV,
            syscall::PROCESS_VM_READV,
            syscall::UNSHARE,
            syscall::SETNS,
            syscall::CLONE_NS,
            syscall::PIDFD_GETFD,
            syscall::MMAP,
        ];
        for (i, a) in codes.iter().enumerate() {
            assert!(!codes[i + 1..].contains(a), "syscall code {a} used twice");
        }
    }

    #[test]
    fn comm_stops_at_nul() {
        assert_eq!(c_bytes(b"cargo\0\0\0"), b"cargo");
        assert_eq!(c_bytes(b"0123456789abcdef"), b"0123456789abcdef");
    }
}
