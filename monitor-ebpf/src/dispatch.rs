//! The system calls the sensor watches, dispatched by number from the raw `sys_enter` and
//! `sys_exit` tracepoints (x86_64) instead of one `syscalls:` tracepoint each.
//!
//! Why: a `syscalls:` tracepoint program makes the kernel fill a perf trace record (with the
//! registers) before the program runs, for every such call of the machine. Measured on the 6.18
//! VM this runs on (CPU time, three alternating rounds, an untracked process while a build is
//! watched): `dd bs=1` (one read, one write per byte) 520 ns per byte with nothing attached,
//! 1,120 ns with one `syscalls:` program pair per watched call (the previous design), 1,020 ns
//! with this dispatcher; an open + close loop 2,330 / 3,130 / 2,860 ns. Most of what remains is
//! not the programs: once any `sys_enter`/`sys_exit` tracepoint is attached the kernel sends
//! every system call of every task through its slow path (`SYSCALL_WORK_SYSCALL_TRACEPOINT` is
//! set on all tasks), and each raw tracepoint run has a fixed cost. On a kernel without fentry,
//! LSM or kprobes that is the floor of syscall tracing (BENCHMARKS.md, guard section).
//!
//! Now every system call of the machine pays one bit test here (and, at exit, one load of the
//! call number); a watched call of an untracked process one `TRACKED` lookup more; a watched call
//! of a tracked process a tail call into the call's own program, which userspace put in
//! `SYS_ENTER_PROGS` / `SYS_EXIT_PROGS` at the call's number. 32-bit calls (whose numbers are
//! another table's) never reach those slots: they go to the compat program (`compat.rs`).
//!
//! With `BUILDWATCH_PROGRAM_STATS` set, userspace loads `SLOT_STATS` as 1 and the tail calls are
//! counted per slot in `SLOT_RUNS`: the kernel's bpf_stats count a tail-called program's runs
//! and time in its dispatcher's alone. `SLOT_STATS` is a frozen global, so in every other run the
//! verifier knows the count's branch is never taken and drops it.
//!
//! Other architectures keep the `syscalls:` tracepoints: the handler programs are declared with
//! [`syscall_program!`], which makes a raw tracepoint program for the dispatcher on x86_64 and a
//! `syscalls:` tracepoint program elsewhere, and read the call through [`Sys`] either way.
#[cfg(not(bpf_target_arch = "x86_64"))]
use aya_ebpf::programs::TracePointContext;
#[cfg(bpf_target_arch = "x86_64")]
use aya_ebpf::{
    Global,
    bindings::pt_regs,
    helpers::generated::{bpf_get_current_task_btf, bpf_probe_read_kernel, bpf_task_pt_regs},
    macros::{map, raw_tracepoint},
    maps::{PerCpuArray, ProgramArray},
    programs::RawTracePointContext,
};

#[cfg(bpf_target_arch = "x86_64")]
use crate::output::{current_tracked, in_compat_syscall, in_compat_syscall_of};

/// Slots of the program arrays: the call numbers (below 512 on x86_64), then ours.
#[cfg(bpf_target_arch = "x86_64")]
const SLOTS: u32 = monitor_common::dispatch::SLOTS;
/// In `SYS_EXIT_PROGS`: the program for 32-bit calls; in `SYS_ENTER_PROGS`, under `--enforce`,
/// the one that kills at their entry.
#[cfg(bpf_target_arch = "x86_64")]
pub const COMPAT_SLOT: u32 = monitor_common::dispatch::COMPAT_SLOT;
/// In `SYS_EXIT_PROGS`: the new name of a rename or link, reported after its old name.
#[cfg(bpf_target_arch = "x86_64")]
pub const LINK_NEW_SLOT: u32 = monitor_common::dispatch::LINK_NEW_SLOT;

/// Nonzero (set at load when `BUILDWATCH_PROGRAM_STATS` is): count the tail calls in `SLOT_RUNS`.
#[cfg(bpf_target_arch = "x86_64")]
#[unsafe(no_mangle)]
pub static SLOT_STATS: Global<u32> = Global::new(0);

/// Tail calls made, per CPU: entry slot `n` at `n`, exit slot `n` at `SLOTS + n`. Read by
/// userspace as the sensor stops (`BUILDWATCH_PROGRAM_STATS`).
#[cfg(bpf_target_arch = "x86_64")]
#[map]
pub static SLOT_RUNS: PerCpuArray<u64> =
    PerCpuArray::with_max_entries(monitor_common::dispatch::RUN_SLOTS, 0);

/// Counts a tail call into entry (`EXIT` false) or exit slot `slot`, if `SLOT_STATS` asks.
/// Inlined at each tail call: with `SLOT_STATS` 0 it is one load and a branch never taken.
#[cfg(bpf_target_arch = "x86_64")]
#[inline(always)]
fn count<const EXIT: bool>(slot: u32) {
    if SLOT_STATS.load() != 0
        && let Some(runs) = SLOT_RUNS.get_ptr_mut(if EXIT { SLOTS + slot } else { slot })
    {
        // SAFETY: this CPU's value; a tracepoint program is not preempted by another run of
        // itself on the same CPU, and a rare lost increment would not matter.
        unsafe { *runs += 1 };
    }
}

/// The watched calls' programs at entry, by call number (userspace fills it).
#[cfg(bpf_target_arch = "x86_64")]
#[map]
pub static SYS_ENTER_PROGS: ProgramArray = ProgramArray::with_max_entries(SLOTS, 0);

/// The watched calls' programs at exit, by call number, and the slots above.
#[cfg(bpf_target_arch = "x86_64")]
#[map]
pub static SYS_EXIT_PROGS: ProgramArray = ProgramArray::with_max_entries(SLOTS, 0);

/// Bit `nr`: `SYS_ENTER_PROGS` has a program for call `nr` (set by userspace at load: the bit
/// test keeps the `TRACKED` lookup off every other call of the machine).
#[cfg(bpf_target_arch = "x86_64")]
#[unsafe(no_mangle)]
pub static ENTER_CALLS: [u64; 8] = [0; 8];

/// Bit `nr`: `SYS_EXIT_PROGS` has a program for call `nr`.
#[cfg(bpf_target_arch = "x86_64")]
#[unsafe(no_mangle)]
pub static EXIT_CALLS: [u64; 8] = [0; 8];

/// Whether bit `nr` is set in `calls` (a frozen read-only global).
#[cfg(bpf_target_arch = "x86_64")]
#[inline(always)]
fn watched(calls: &'static [u64; 8], nr: u64) -> bool {
    if nr >= 512 {
        return false;
    }
    // SAFETY: an index below 8 into a static array; volatile so that the compiler does not fold
    // the all-zero initial value userspace overrides at load.
    let word = unsafe { core::ptr::read_volatile(calls.as_ptr().add((nr / 64) as usize & 7)) };
    word & (1 << (nr % 64)) != 0
}

/// `sys_enter(struct pt_regs *regs, long id)`.
#[cfg(bpf_target_arch = "x86_64")]
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn raw_sys_enter(ctx: RawTracePointContext) -> i32 {
    // Under --enforce a tracked process's 32-bit call is killed at entry (enforce_kill.rs).
    // `ENFORCE` is a frozen global: without --enforce the verifier drops this test altogether.
    if crate::maps::ENFORCE.load() != 0 && in_compat_syscall() {
        if current_tracked().is_some() {
            count::<false>(COMPAT_SLOT);
            // SAFETY: the context is this program's own; on failure control returns.
            unsafe { SYS_ENTER_PROGS.tail_call(&ctx, COMPAT_SLOT) };
        }
        return 0;
    }
    let nr: u64 = ctx.arg(1);
    if watched(&ENTER_CALLS, nr) && !in_compat_syscall() && current_tracked().is_some() {
        count::<false>(nr as u32);
        // SAFETY: the context is this program's own; on failure (an empty slot) control returns.
        unsafe { SYS_ENTER_PROGS.tail_call(&ctx, nr as u32) };
    }
    0
}

/// `sys_exit(struct pt_regs *regs, long ret)`: the call number is the saved `orig_ax`.
#[cfg(bpf_target_arch = "x86_64")]
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn raw_sys_exit(ctx: RawTracePointContext) -> i32 {
    // SAFETY: plain helper call; the result is the current task, BTF-typed.
    let task = unsafe { bpf_get_current_task_btf() };
    // First: a 32-bit call's number is another table's.
    if in_compat_syscall_of(task) {
        if current_tracked().is_some() {
            count::<true>(COMPAT_SLOT);
            // SAFETY: as above.
            unsafe { SYS_EXIT_PROGS.tail_call(&ctx, COMPAT_SLOT) };
        }
        return 0;
    }
    // SAFETY: a BTF-typed pointer to the current task's saved registers, read at a constant
    // offset the verifier checks against the type: a plain load, not a helper call.
    let nr = unsafe {
        let regs = bpf_task_pt_regs(task) as *const pt_regs;
        core::ptr::read_volatile(&raw const (*regs).orig_rax)
    };
    if watched(&EXIT_CALLS, nr) && current_tracked().is_some() {
        count::<true>(nr as u32);
        // SAFETY: as above.
        unsafe { SYS_EXIT_PROGS.tail_call(&ctx, nr as u32) };
    }
    0
}

/// A system call at entry or exit, read as a `syscalls:` tracepoint record would hold it: the
/// call number (`int`) at offset 8; at entry the arguments (8 bytes each) from offset 16; at exit
/// the result (`long`) at 16. So a handler reads a call the same way on every architecture.
/// `EXIT` is a constant, so that the compiler folds the record layout away in each handler.
pub struct Sys<'a, const EXIT: bool> {
    #[cfg(bpf_target_arch = "x86_64")]
    ctx: &'a RawTracePointContext,
    #[cfg(not(bpf_target_arch = "x86_64"))]
    ctx: &'a TracePointContext,
}

/// A call at entry.
pub type Enter<'a> = Sys<'a, false>;
/// A call at exit.
pub type Exit<'a> = Sys<'a, true>;

/// The saved registers holding system call arguments 0..5 (x86_64 ABI), by offset in `pt_regs`.
#[cfg(bpf_target_arch = "x86_64")]
const ARG_REGS: [usize; 6] = [
    core::mem::offset_of!(pt_regs, rdi),
    core::mem::offset_of!(pt_regs, rsi),
    core::mem::offset_of!(pt_regs, rdx),
    core::mem::offset_of!(pt_regs, r10),
    core::mem::offset_of!(pt_regs, r8),
    core::mem::offset_of!(pt_regs, r9),
];

impl<'a, const EXIT: bool> Sys<'a, EXIT> {
    #[cfg(bpf_target_arch = "x86_64")]
    #[inline(always)]
    pub fn new(ctx: &'a RawTracePointContext) -> Self {
        Self { ctx }
    }

    #[cfg(not(bpf_target_arch = "x86_64"))]
    #[inline(always)]
    pub fn new(ctx: &'a TracePointContext) -> Self {
        Self { ctx }
    }

    /// Continues with the program in `slot` of `SYS_EXIT_PROGS` (returns if there is none).
    #[cfg(bpf_target_arch = "x86_64")]
    #[inline(always)]
    pub fn continue_exit(&self, slot: u32) {
        count::<true>(slot);
        // SAFETY: the context is this program's own.
        unsafe { SYS_EXIT_PROGS.tail_call(self.ctx, slot) };
    }

    /// The saved user registers (`struct pt_regs *`), the raw tracepoints' first argument.
    #[cfg(bpf_target_arch = "x86_64")]
    #[inline(always)]
    pub fn regs(&self) -> u64 {
        self.ctx.arg(0)
    }

    /// The value at `offset` of the call's tracepoint record (see the type): `T` of at most 8
    /// bytes. Err(-1) for an offset the record does not have.
    ///
    /// # Safety
    /// Like `TracePointContext::read_at`: `T` must be valid for any bit pattern.
    #[cfg(bpf_target_arch = "x86_64")]
    #[inline(always)]
    pub unsafe fn read_at<T: Copy>(&self, offset: usize) -> Result<T, i64> {
        let word: u64 = if offset == 8 {
            self.read_reg(core::mem::offset_of!(pt_regs, orig_rax))?
        } else if EXIT {
            if offset != 16 {
                return Err(-1);
            }
            self.ctx.arg(1)
        } else {
            let i = offset.wrapping_sub(16) / 8;
            if offset < 16 || i >= 6 || !offset.is_multiple_of(8) {
                return Err(-1);
            }
            self.read_reg(ARG_REGS[i])?
        };
        // SAFETY: `T` is at most 8 bytes (the caller's promise); little-endian, so its bytes are
        // the word's low ones, as in the record.
        Ok(unsafe { core::mem::transmute_copy::<u64, T>(&word) })
    }

    #[cfg(bpf_target_arch = "x86_64")]
    #[inline(always)]
    fn read_reg(&self, offset: usize) -> Result<u64, i64> {
        let mut v = 0u64;
        // SAFETY: the tracepoint's pt_regs pointer; the helper checks the read.
        let r = unsafe {
            bpf_probe_read_kernel(
                (&raw mut v).cast(),
                8,
                (self.regs() + offset as u64) as *const _,
            )
        };
        if r < 0 { Err(r) } else { Ok(v) }
    }

    /// See the x86_64 version.
    ///
    /// # Safety
    /// Like `TracePointContext::read_at`.
    #[cfg(not(bpf_target_arch = "x86_64"))]
    #[inline(always)]
    pub unsafe fn read_at<T: Copy>(&self, offset: usize) -> Result<T, i64> {
        // SAFETY: the caller's promise; the record's fields are at the offsets named above.
        unsafe { self.ctx.read_at(offset) }.map_err(i64::from)
    }
}

/// Declares the program of a watched system call's entry or exit: `$name` runs `$body` with
/// `$sys` bound to the call's [`Sys`]. x86_64: a raw tracepoint program the dispatcher tail-calls
/// (userspace puts it in the call's slot); elsewhere the `syscalls:` tracepoint `$tp`.
#[macro_export]
macro_rules! syscall_program {
    ($(#[$meta:meta])* $name:ident, $tp:literal, exit = $exit:literal, |$sys:ident| $body:expr) => {
        $(#[$meta])*
        #[cfg(bpf_target_arch = "x86_64")]
        #[aya_ebpf::macros::raw_tracepoint]
        pub fn $name(ctx: aya_ebpf::programs::RawTracePointContext) -> i32 {
            let $sys = &$crate::dispatch::Sys::<$exit>::new(&ctx);
            let _ = $body;
            0
        }
        $(#[$meta])*
        #[cfg(not(bpf_target_arch = "x86_64"))]
        #[aya_ebpf::macros::tracepoint(category = "syscalls", name = $tp)]
        pub fn $name(ctx: aya_ebpf::programs::TracePointContext) -> i32 {
            let $sys = &$crate::dispatch::Sys::<$exit>::new(&ctx);
            let _ = $body;
            0
        }
    };
}
