//! The raw `sys_enter`/`sys_exit` dispatchers' side in userspace (x86_64): which call numbers
//! have a program (the kernel side's `ENTER_CALLS`/`EXIT_CALLS` bits, set at load) and the
//! program arrays, filled with the loaded programs before anything is tracked. Elsewhere a
//! system call hook is a `syscalls:` tracepoint. See monitor-ebpf/src/dispatch.rs for why.
use std::borrow::Cow;

use super::programs::{Hook, Program, Side};
#[cfg(target_arch = "x86_64")]
use super::{SensorError, error::load_error};

impl Hook {
    /// The tracepoint (category, name) this hook attaches to on this architecture, if any.
    pub(super) fn tracepoint(&self) -> Option<(&'static str, Cow<'static, str>)> {
        match self {
            Hook::TracePoint(category, name) => Some((category, Cow::Borrowed(name))),
            #[cfg(not(target_arch = "x86_64"))]
            Hook::Syscall(side, name, _) => Some((
                "syscalls",
                Cow::Owned(format!("sys_{}_{name}", side.word())),
            )),
            _ => None,
        }
    }
}

impl Hook {
    /// Whether this hook sees system calls: attaching one sends every system call of the
    /// machine through the kernel's slow path, so the guard leaves these detached while no
    /// build runs (dormant.rs).
    pub(super) fn is_syscall_hook(&self) -> bool {
        match self {
            Hook::RawTracePoint(tp) => matches!(*tp, "sys_enter" | "sys_exit"),
            Hook::TracePoint(category, _) => *category == "syscalls",
            Hook::Syscall(..) | Hook::Slot(..) => true,
        }
    }
}

/// Bit masks of the call numbers with a program at entry and at exit (x86_64's numbers).
pub(super) fn call_masks(programs: &[&Program]) -> ([u64; 8], [u64; 8]) {
    let mut enter = [0u64; 8];
    let mut exit = [0u64; 8];
    for hook in programs.iter().flat_map(|p| p.hooks) {
        if let Hook::Syscall(side, _, nr) = hook
            && (0..512).contains(nr)
        {
            let mask = if *side == Side::Enter {
                &mut enter
            } else {
                &mut exit
            };
            mask[*nr as usize / 64] |= 1 << (*nr % 64);
        }
    }
    (enter, exit)
}

/// The program array of a side's dispatcher.
#[cfg(target_arch = "x86_64")]
fn array(side: Side) -> &'static str {
    match side {
        Side::Enter => "SYS_ENTER_PROGS",
        Side::Exit => "SYS_EXIT_PROGS",
    }
}

/// Puts every loaded program with a system call or slot hook into its dispatcher's array.
#[cfg(target_arch = "x86_64")]
pub(super) fn fill(ebpf: &mut aya::Ebpf, programs: &[&Program]) -> Result<(), SensorError> {
    use aya::maps::ProgramArray;
    let mut entries = Vec::new();
    for program in programs {
        for hook in program.hooks {
            let (array, slot, what) = match hook {
                Hook::Syscall(side, call, nr) => (
                    array(*side),
                    *nr as u32,
                    format!("sys_{}_{call}", side.word()),
                ),
                Hook::Slot(side, slot) => (array(*side), *slot, "its own slot".to_owned()),
                _ => continue,
            };
            let loaded = ebpf.program(program.name).ok_or_else(|| {
                SensorError::Object(format!(
                    "program `{}` is missing from the eBPF object",
                    program.name
                ))
            })?;
            let fd = loaded
                .fd()
                .map_err(|e| load_error(program.name, e))?
                .try_clone()
                .map_err(|e| {
                    SensorError::Object(format!("duplicating `{}`'s fd: {e}", program.name))
                })?;
            entries.push((array, slot, what, fd, program.name));
        }
    }
    for (array, slot, what, fd, name) in entries {
        let map = ebpf.map_mut(array).ok_or_else(|| {
            SensorError::Object(format!("map `{array}` is missing from the eBPF object"))
        })?;
        let mut map = ProgramArray::try_from(map)
            .map_err(|e| SensorError::Object(format!("map `{array}`: {e}")))?;
        map.set(slot, &fd, 0).map_err(|e| {
            SensorError::Object(format!(
                "putting `{name}` ({what}) in slot {slot} of `{array}`: {e}"
            ))
        })?;
    }
    Ok(())
}

/// `SLOT_STATS` at load: 1 when `BUILDWATCH_PROGRAM_STATS` asks for the programs' statistics,
/// so that the dispatchers count their tail calls per slot. 0 otherwise: the verifier then drops
/// the counting as dead code, and a normal run pays nothing for it.
pub(super) fn slot_stats() -> &'static u32 {
    if std::env::var_os("BUILDWATCH_PROGRAM_STATS").is_some() {
        &1
    } else {
        &0
    }
}

/// For `BUILDWATCH_PROGRAM_STATS` (x86_64), on stderr as the sensor stops: how often each
/// dispatched program ran (the kernel's bpf_stats count a tail-called program in its
/// dispatcher's figures only), as `handler: DISPATCHER: PROGRAM: N runs`, every slot of the
/// program summed; and every program's tag, as `program tag: PROGRAM: HEX`, which names its
/// JIT image in /proc/kallsyms (`bpf_prog_HEX_NAME`) and so in `perf` samples.
#[cfg(target_arch = "x86_64")]
pub(super) fn print_handler_runs(ebpf: &aya::Ebpf) {
    use super::programs::{ENFORCE_PROGRAMS, PROGRAMS};
    use monitor_common::dispatch::SLOTS;
    for (name, program) in ebpf.programs() {
        if let Ok(info) = program.info() {
            eprintln!("program tag: {name}: {:016x}", info.tag());
        }
    }
    let runs = match ebpf
        .map("SLOT_RUNS")
        .map(aya::maps::PerCpuArray::<_, u64>::try_from)
    {
        Some(Ok(runs)) => runs,
        Some(Err(e)) => return eprintln!("handler: cannot read SLOT_RUNS: {e}"),
        None => return eprintln!("handler: SLOT_RUNS is missing from the eBPF object"),
    };
    // Every slot a program is in; a continuation slot (the new name of a rename or link) is
    // reached from a program the exit dispatcher called, so its time is in that dispatcher's too.
    let mut totals: Vec<(&str, &str, u64)> = Vec::new();
    for program in PROGRAMS.iter().chain(ENFORCE_PROGRAMS) {
        for hook in program.hooks {
            let (side, slot) = match hook {
                Hook::Syscall(side, _, nr) => (*side, *nr as u32),
                Hook::Slot(side, slot) => (*side, *slot),
                _ => continue,
            };
            let (dispatcher, index) = match side {
                Side::Enter => ("raw_sys_enter", slot),
                Side::Exit => ("raw_sys_exit", SLOTS + slot),
            };
            let Ok(values) = runs.get(&index, 0) else {
                continue;
            };
            let n: u64 = values.iter().sum();
            match totals
                .iter_mut()
                .find(|(d, p, _)| *d == dispatcher && *p == program.name)
            {
                Some(total) => total.2 += n,
                None => totals.push((dispatcher, program.name, n)),
            }
        }
    }
    for (dispatcher, program, n) in totals.into_iter().filter(|t| t.2 > 0) {
        eprintln!("handler: {dispatcher}: {program}: {n} runs");
    }
}
