//! The stash of syscalls under way: arguments saved at sys_enter (for the file, network and
//! proc-macro families), taken back at sys_exit. Every family depends on this module and none on
//! another's for it.
use crate::dispatch::Enter;
use aya_ebpf::{macros::map, maps::HashMap};
use monitor_common::counter;

use crate::{maps::count_loss, output::current_tracked};

/// Arguments of syscalls under way (key: pid_tgid), stashed at sys_enter and read at sys_exit,
/// when user memory has been faulted in by the kernel (reading it at sys_enter can fail).
#[map]
pub static PENDING: HashMap<u64, Pending> = HashMap::with_max_entries(16384, 0);

/// A syscall's arguments between sys_enter and sys_exit.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Pending {
    /// One of `monitor_common::syscall`.
    pub syscall: u32,
    /// Flags set while the syscall is under way (`flag::REFUSED` by the cgroup hooks).
    pub _pad: u32,
    /// Raw arguments, meaning per syscall.
    pub args: [u64; 4],
}

/// Offset of syscall argument `n` in a sys_enter tracepoint record.
pub const fn arg(n: usize) -> usize {
    16 + 8 * n
}

/// Stashes the first `nargs` arguments of the current tracked thread's syscall.
#[inline(always)]
pub fn stash(ctx: &Enter, syscall: u32, nargs: usize) -> Option<()> {
    let task = current_tracked()?;
    let mut args = [0u64; 4];
    let mut i = 0;
    while i < 4 {
        if i < nargs {
            // SAFETY: syscall tracepoint records hold their arguments at fixed offsets.
            args[i] = unsafe { ctx.read_at::<u64>(arg(i)) }.unwrap_or(0);
        }
        i += 1;
    }
    let pending = Pending {
        syscall,
        _pad: 0,
        args,
    };
    if PENDING.insert(task.pid_tgid, pending, 0).is_err() {
        count_loss(counter::PENDING_FULL);
    }
    Some(())
}

/// Takes the stash of the current thread if it belongs to one of `syscalls`.
#[inline(always)]
pub fn take_pending(pid_tgid: u64) -> Option<Pending> {
    // SAFETY: the value is copied out before the entry is removed.
    let pending = unsafe { PENDING.get(pid_tgid) }.copied()?;
    let _ = PENDING.remove(pid_tgid);
    Some(pending)
}
