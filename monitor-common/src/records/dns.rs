//! DNS family: the start of a query sent to port 53 (the name it asks for).
use super::header::RecordHeader;

/// Record kinds of the dns family (`0x04nn`).
pub mod kind {
    /// The start of a DNS query sent by a tracked process: [`super::DnsRecord`].
    pub const DNS: u32 = 0x0401;
}

/// Longest DNS message prefix copied.
pub const DNS_MAX: usize = 256;

/// The first bytes of a datagram sent to port 53.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsRecord {
    /// Header.
    pub header: RecordHeader,
    /// Bytes of `data` used.
    pub len: u32,
    /// Destination port (host order).
    pub port: u16,
    /// Address family.
    pub family: u16,
    /// Proc-macro libraries (slot bits) with a return address on the sending thread's stack.
    pub callers: u32,
    /// Reserved, zero.
    pub _pad: u32,
    /// Destination address (network order).
    pub addr: [u8; 16],
    /// The message.
    pub data: [u8; DNS_MAX],
}

impl Default for DnsRecord {
    fn default() -> Self {
        Self {
            header: RecordHeader::default(),
            len: 0,
            port: 0,
            family: 0,
            callers: 0,
            _pad: 0,
            addr: [0; 16],
            data: [0; DNS_MAX],
        }
    }
}

impl_record!(DnsRecord);

// No implicit padding: the size is the sum of the fields', a multiple of 8.
const _: () = assert!(size_of::<DnsRecord>() == size_of::<RecordHeader>() + 32 + DNS_MAX);
const _: () = assert!(size_of::<DnsRecord>().is_multiple_of(8));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::testing::{header, round_trip};

    #[test]
    fn dns_record_round_trips() {
        let mut data = [0u8; DNS_MAX];
        data[..4].copy_from_slice(&[0x12, 0x34, 1, 0]);
        round_trip(DnsRecord {
            header: header(kind::DNS),
            len: 4,
            port: 53,
            family: 2,
            callers: 1,
            _pad: 0,
            addr: [127, 0, 0, 53, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            data,
        });
    }
}
