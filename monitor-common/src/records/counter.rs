//! Loss family: indices of the per-CPU counters in the `COUNTERS` map. Every one of them counts
//! records that userspace did not get; userspace sums them and reports them as `lost` events
//! (the reason of each index is `LostReason` in the monitor's event model).

/// A record did not fit in the ring buffer.
pub const RINGBUF_FULL: u32 = 0;
/// A syscall's arguments could not be stashed at sys_enter (pending map full), so its
/// sys_exit record was not produced.
pub const PENDING_FULL: u32 = 1;
/// A forked process could not be added to the tracked set (tracked map full): it and its
/// descendants are not watched.
pub const TRACK_FULL: u32 = 2;
/// Number of counters.
pub const COUNT: u32 = 3;
