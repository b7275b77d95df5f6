//! Reading the ring buffer: decoded events and loss reports, on a thread of their own.
//!
//! Wake-ups are what the reader costs (measured on the `popular` fixture build: ~50 µs of CPU
//! each on this 2-core VM, against ~1.5 µs to decode an event). Exec records wake it at once
//! (fork and exit records too under `--enforce` and in the guard); others it collects every
//! [`POLL`], or when the buffer is an eighth full (the kernel side forces a wake-up then). Asked
//! to stop, or to flush what there is (the run loop does before it decides on processes left
//! behind), it wakes at once ([`StopSignal`]), so that the wait does not lengthen a run.
use std::{
    os::fd::{AsRawFd as _, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use aya::maps::{MapData, PerCpuArray, RingBuf};
use monitor_common::counter;

use crate::{
    decode::Decoder,
    model::{Event, LostReason},
};

/// What the stream sends down the pipeline.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "events are nearly every message; boxing them would add an allocation to each"
)]
pub enum StreamMessage {
    /// A decoded event (including `lost` events).
    Event(Event),
    /// A record that could not be decoded (a sensor bug); counted as lost too.
    DecodeError(String),
    /// The stream was asked to stop and has drained the ring buffer.
    Drained,
    /// Every record committed before [`StopSignal::flush`] was called has been sent.
    Flushed,
}

/// The ring buffer and loss counters, owned by the reader thread.
pub struct SensorStream {
    events: RingBuf<MapData>,
    counters: PerCpuArray<MapData, u64>,
    reported: [u64; counter::COUNT as usize],
}

/// How long the reader sleeps when nothing wakes it.
const POLL: Duration = Duration::from_millis(100);

/// "Stop reading" (a flag) and "read what is there now" (a request count), and an eventfd that
/// wakes the reader from its wait for either.
#[derive(Clone)]
pub struct StopSignal {
    flag: Arc<AtomicBool>,
    flushes: Arc<AtomicU64>,
    wake: Arc<OwnedFd>,
}

impl StopSignal {
    /// A new, unset signal.
    pub fn new() -> std::io::Result<Self> {
        // SAFETY: eventfd(2) with constant flags; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: a descriptor just returned by eventfd, owned by nobody else.
        let wake = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        Ok(Self {
            flag: Arc::new(AtomicBool::new(false)),
            flushes: Arc::new(AtomicU64::new(0)),
            wake: Arc::new(wake),
        })
    }

    /// Asks the reader to drain and stop, waking it.
    pub fn set(&self) {
        self.flag.store(true, Ordering::Release);
        self.wake();
    }

    /// Asks the reader to send every record there is now (fork and exit records do not wake
    /// it), then [`StreamMessage::Flushed`].
    pub fn flush(&self) {
        self.flushes.fetch_add(1, Ordering::AcqRel);
        self.wake();
    }

    fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writing 8 bytes to an eventfd we own; a full counter (EAGAIN) still wakes.
        unsafe { libc::write(self.wake.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    /// Empties the eventfd once it has woken the reader (it stays readable until read).
    fn drain_wake(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reading 8 bytes from our non-blocking eventfd into a local buffer; EAGAIN
        // (nothing to read) is fine.
        unsafe {
            libc::read(
                self.wake.as_raw_fd(),
                count.as_mut_ptr().cast(),
                count.len(),
            )
        };
    }

    /// Whether [`Self::set`] was called.
    pub fn is_set(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

/// The most events handed to the pipeline at once.
pub const BATCH: usize = 256;

/// Why the records of each loss counter (its index) were lost.
const LOSS_REASONS: [LostReason; counter::COUNT as usize] = [
    LostReason::RingBufferFull,
    LostReason::PendingFull,
    LostReason::TrackedFull,
];

impl SensorStream {
    pub(super) fn new(events: RingBuf<MapData>, counters: PerCpuArray<MapData, u64>) -> Self {
        Self {
            events,
            counters,
            reported: [0; counter::COUNT as usize],
        }
    }

    /// Reads until `stop` is set, then drains what is left and sends [`StreamMessage::Drained`].
    /// Messages go out in batches (of up to [`BATCH`]: one hand-over between threads per batch,
    /// not per event). `send` returns false when nobody listens any more; the stream then ends.
    pub fn run(
        mut self,
        decoder: Decoder,
        mut send: impl FnMut(Vec<StreamMessage>) -> bool,
        stop: StopSignal,
    ) {
        let mut last_counters = Instant::now();
        let mut flushed = 0;
        loop {
            let stopping = stop.is_set();
            if !stopping {
                self.wait_readable(&stop, POLL);
                stop.drain_wake();
            }
            // Asked before this pass reads: the pass has every record committed by then.
            let flushes = stop.flushes.load(Ordering::Acquire);
            let read = match self.read_available(&decoder, &mut send) {
                Some(n) => n,
                None => return,
            };
            if flushes > flushed {
                flushed = flushes;
                if !send(vec![StreamMessage::Flushed]) {
                    return;
                }
            }
            if stopping || last_counters.elapsed() >= POLL {
                last_counters = Instant::now();
                let losses: Vec<StreamMessage> = self
                    .new_losses(&decoder)
                    .into_iter()
                    .map(StreamMessage::Event)
                    .collect();
                if !losses.is_empty() && !send(losses) {
                    return;
                }
            }
            if stopping && read == 0 {
                send(vec![StreamMessage::Drained]);
                return;
            }
        }
    }

    fn wait_readable(&self, stop: &StopSignal, timeout: Duration) {
        let mut fds = [
            libc::pollfd {
                fd: self.events.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: stop.wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds; a failure (EINTR) just means we read again sooner.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout.as_millis() as i32) };
    }

    /// Sends every record available now; `None` if the receiver is gone.
    fn read_available(
        &mut self,
        decoder: &Decoder,
        send: &mut impl FnMut(Vec<StreamMessage>) -> bool,
    ) -> Option<usize> {
        let mut n = 0;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(item) = self.events.next() {
            n += 1;
            let message = match decoder.decode(&item) {
                Ok(event) => StreamMessage::Event(event),
                Err(e) => StreamMessage::DecodeError(e.to_string()),
            };
            drop(item);
            batch.push(message);
            if batch.len() == BATCH
                && !send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
            {
                return None;
            }
        }
        if !batch.is_empty() && !send(batch) {
            return None;
        }
        Some(n)
    }

    /// `lost` events for counter increases since the last call.
    fn new_losses(&mut self, decoder: &Decoder) -> Vec<Event> {
        let mut out = Vec::new();
        for index in 0..counter::COUNT {
            let Ok(per_cpu) = self.counters.get(&index, 0) else {
                continue;
            };
            let total: u64 = per_cpu.iter().sum();
            let slot = &mut self.reported[index as usize];
            if total > *slot {
                out.push(decoder.lost(total - *slot, LOSS_REASONS[index as usize]));
                *slot = total;
            }
        }
        out
    }
}
