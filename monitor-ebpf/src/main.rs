//! buildwatch's eBPF sensor: tracepoints that report what the watched command's process tree
//! does (fork, exec, exit, file opens, connects) into one ring buffer.
//!
//! Scoping happens here, in the kernel: only processes in `TRACKED` produce records. Userspace
//! seeds `TRACKED` with the watched command's pid before that command runs its first instruction,
//! and `process::sched_process_fork` adds every process a tracked process forks. The monitor
//! itself is never in the set, so its own activity is never reported.
#![no_std]
#![no_main]

#[cfg(bpf_target_arch = "x86_64")]
mod compat;
mod dispatch;
mod enforce_kill;
mod file;
mod guard;
mod kernel;
mod macros;
mod maps;
mod net;
mod output;
mod pending;
mod privilege;
mod process;
mod protected;
mod quiet;
mod raw_socket;
mod send;
mod tamper;
mod uring;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

// The probe-read helpers are GPL-only, so the programs must declare a GPL-compatible licence.
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
