//! The sensor: loads and attaches the eBPF programs, seeds the tracked set, and streams decoded
//! events out of the ring buffer. The only module that touches aya.
mod btf;
mod offsets;
mod privileges;
mod stream;
pub mod tracefs;

use std::path::PathBuf;

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf},
    programs::{
        ProgramError, RawTracePoint, TracePoint, raw_trace_point::RawTracePointLink,
        trace_point::TracePointLink,
    },
};
use thiserror::Error;

pub use stream::{SensorStream, StreamMessage};

/// Default ring buffer size: 16 MiB.
pub const DEFAULT_RING_BUFFER_BYTES: u32 = 16 * 1024 * 1024;

/// How to load the sensor.
#[derive(Clone, Debug)]
pub struct SensorConfig {
    /// Ring buffer size in bytes (a power of two, at least one page).
    pub ring_buffer_bytes: u32,
}

impl Default for SensorConfig {
    fn default() -> Self {
        Self {
            ring_buffer_bytes: DEFAULT_RING_BUFFER_BYTES,
        }
    }
}

/// Why the sensor could not be loaded. Every message names the cause and what to do.
#[derive(Debug, Error)]
pub enum SensorError {
    /// Not enough privileges to load eBPF programs.
    #[error(
        "buildwatch needs root, or the capabilities CAP_BPF and CAP_PERFMON, to load its eBPF sensor \
         (missing: {missing}). Run it with sudo, e.g. `sudo buildwatch -- cargo build`; the watched \
         command still runs as you."
    )]
    NotPrivileged {
        /// The capabilities that are missing.
        missing: String,
    },
    /// tracefs is not available.
    #[error(
        "tracefs is not available ({0}). The sensor's tracepoints need it: mount it with \
         `sudo mount -t tracefs nodev /sys/kernel/tracing` and try again"
    )]
    Tracefs(String),
    /// Kernel BTF is missing or unusable.
    #[error(
        "kernel type information (BTF) is not usable: {0}. buildwatch needs a kernel built with \
         CONFIG_DEBUG_INFO_BTF=y (/sys/kernel/btf/vmlinux)"
    )]
    Btf(String),
    /// A hook the sensor needs does not exist on this kernel.
    #[error("this kernel lacks {hook}, which the sensor needs ({detail})")]
    MissingHook {
        /// The hook.
        hook: String,
        /// What was found.
        detail: String,
    },
    /// The ring buffer size is not valid.
    #[error("ring buffer size {0} is not a power of two of at least 4096 bytes")]
    RingBufferSize(u32),
    /// Loading the eBPF object failed (maps or relocation).
    #[error("loading the eBPF object failed: {0}")]
    Object(String),
    /// The verifier rejected a program.
    #[error(
        "the kernel's verifier rejected eBPF program `{program}`: {reason}. This is a buildwatch bug \
         or an unsupported kernel; run with -v to see the verifier log and report it"
    )]
    Verifier {
        /// Program name.
        program: String,
        /// The syscall's error.
        reason: String,
        /// The verifier's log.
        log: String,
    },
    /// Attaching a program failed.
    #[error("attaching eBPF program `{program}` to {hook} failed: {reason}")]
    Attach {
        /// Program name.
        program: String,
        /// The hook.
        hook: String,
        /// Why.
        reason: String,
    },
    /// A map operation failed.
    #[error("eBPF map {map}: {reason}")]
    Map {
        /// Map name.
        map: &'static str,
        /// Why.
        reason: String,
    },
}

impl SensorError {
    /// The verifier log, when the error carries one.
    pub fn verifier_log(&self) -> Option<&str> {
        match self {
            SensorError::Verifier { log, .. } => Some(log),
            _ => None,
        }
    }
}

/// Where each program attaches. One table, one loader loop.
enum Hook {
    TracePoint(&'static str, &'static str),
    RawTracePoint(&'static str),
}

const PROGRAMS: &[(&str, &[Hook])] = &[
    (
        "sched_process_fork",
        &[Hook::RawTracePoint("sched_process_fork")],
    ),
    (
        "sched_process_exec",
        &[Hook::TracePoint("sched", "sched_process_exec")],
    ),
    (
        "sched_process_exit",
        &[Hook::TracePoint("sched", "sched_process_exit")],
    ),
    (
        "sys_enter_openat",
        &[Hook::TracePoint("syscalls", "sys_enter_openat")],
    ),
    (
        "sys_enter_openat2",
        &[Hook::TracePoint("syscalls", "sys_enter_openat2")],
    ),
    (
        "sys_enter_open",
        &[Hook::TracePoint("syscalls", "sys_enter_open")],
    ),
    (
        "sys_enter_creat",
        &[Hook::TracePoint("syscalls", "sys_enter_creat")],
    ),
    (
        "sys_exit_open_family",
        &[
            Hook::TracePoint("syscalls", "sys_exit_openat"),
            Hook::TracePoint("syscalls", "sys_exit_openat2"),
            Hook::TracePoint("syscalls", "sys_exit_open"),
            Hook::TracePoint("syscalls", "sys_exit_creat"),
        ],
    ),
    (
        "sys_enter_connect",
        &[Hook::TracePoint("syscalls", "sys_enter_connect")],
    ),
    (
        "sys_exit_connect",
        &[Hook::TracePoint("syscalls", "sys_exit_connect")],
    ),
    (
        "sys_enter_mmap",
        &[Hook::TracePoint("syscalls", "sys_enter_mmap")],
    ),
    (
        "sys_exit_mmap",
        &[Hook::TracePoint("syscalls", "sys_exit_mmap")],
    ),
];

/// The eBPF object, built by monitor/build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/monitor"));

/// An attachment, owned so that detaching can be done in parallel.
enum OwnedLink {
    TracePoint(#[expect(dead_code, reason = "held for its Drop, which detaches")] TracePointLink),
    Raw(#[expect(dead_code, reason = "held for its Drop, which detaches")] RawTracePointLink),
}

/// The loaded and attached sensor. Dropping it detaches every program.
pub struct Sensor {
    links: Vec<OwnedLink>,
    ebpf: Ebpf,
    tracked: BpfHashMap<MapData, u32, u32>,
    stream: Option<SensorStream>,
}

impl Sensor {
    /// Loads and attaches every program. Nothing is watched until [`Sensor::track`] is called.
    pub fn load(config: &SensorConfig) -> Result<Self, SensorError> {
        privileges::check()?;
        let size = config.ring_buffer_bytes;
        if !size.is_power_of_two() || size < 4096 {
            return Err(SensorError::RingBufferSize(size));
        }
        raise_memlock_limit();
        let tracefs_dir: PathBuf = tracefs::ensure_mounted()?;
        for hook in PROGRAMS.iter().flat_map(|(_, hooks)| hooks.iter()) {
            if let Hook::TracePoint(category, name) = hook
                && !tracefs::has_tracepoint(&tracefs_dir, category, name)
            {
                return Err(SensorError::MissingHook {
                    hook: format!("tracepoint {category}/{name}"),
                    detail: format!("no {}/events/{category}/{name}", tracefs_dir.display()),
                });
            }
        }
        let offsets = offsets::kernel_offsets(&tracefs_dir)?;
        let cpus = aya::util::nr_cpus().map_err(|(path, e)| {
            SensorError::Object(format!("cannot count CPUs from {path}: {e}"))
        })? as u32;
        let mut ebpf = EbpfLoader::new()
            // The programs use no CO-RE relocations (offsets come in OFFSETS), so aya need not
            // parse the kernel's BTF a second time.
            .btf(None)
            .override_global("OFFSETS", &offsets, true)
            .map_max_entries("EVENTS", size)
            .map_max_entries("SCRATCH", cpus)
            .map_max_entries("PATH_SCRATCH", cpus)
            .map_max_entries("STACK_SCRATCH", cpus)
            .load(OBJECT)
            .map_err(|e| SensorError::Object(e.to_string()))?;
        let mut links = Vec::new();
        for (name, hooks) in PROGRAMS {
            attach(&mut ebpf, name, hooks, &mut links)?;
        }
        let tracked = take_map(&mut ebpf, "TRACKED", BpfHashMap::try_from)?;
        let events = take_map(&mut ebpf, "EVENTS", RingBuf::try_from)?;
        let counters = take_map(&mut ebpf, "COUNTERS", PerCpuArray::try_from)?;
        Ok(Self {
            links,
            ebpf,
            tracked,
            stream: Some(SensorStream::new(events, counters)),
        })
    }

    /// Starts watching process `pid` (and, through fork, all its descendants).
    pub fn track(&mut self, pid: u32) -> Result<(), SensorError> {
        self.tracked
            .insert(pid, 1, 0)
            .map_err(|e| SensorError::Map {
                map: "TRACKED",
                reason: e.to_string(),
            })
    }

    /// Number of processes currently tracked (alive in the watched tree).
    pub fn tracked_count(&self) -> usize {
        self.tracked.keys().filter(Result::is_ok).count()
    }

    /// The event stream, to be moved to the reader thread. Only available once.
    pub fn take_stream(&mut self) -> Option<SensorStream> {
        self.stream.take()
    }

    /// Number of programs attached.
    pub fn program_count(&self) -> usize {
        self.ebpf.programs().count()
    }
}

/// Loads program `name` once and attaches it to every hook in `hooks`.
fn attach(
    ebpf: &mut Ebpf,
    name: &str,
    hooks: &[Hook],
    links: &mut Vec<OwnedLink>,
) -> Result<(), SensorError> {
    let program = ebpf.program_mut(name).ok_or_else(|| {
        SensorError::Object(format!("program `{name}` is missing from the eBPF object"))
    })?;
    let load_error = |e: ProgramError| match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => SensorError::Verifier {
            program: name.to_owned(),
            reason: io_error.to_string(),
            log: verifier_log.to_string(),
        },
        other => SensorError::Object(format!("program `{name}`: {other}")),
    };
    let attach_error = |hook: String| {
        move |e: ProgramError| SensorError::Attach {
            program: name.to_owned(),
            hook: hook.clone(),
            reason: e.to_string(),
        }
    };
    match hooks.first() {
        Some(Hook::TracePoint(..)) => {
            let p: &mut TracePoint = program.try_into().map_err(load_error)?;
            p.load().map_err(load_error)?;
            for hook in hooks {
                if let Hook::TracePoint(category, tp) = hook {
                    let err = attach_error(format!("tracepoint {category}/{tp}"));
                    let id = p.attach(category, tp).map_err(&err)?;
                    links.push(OwnedLink::TracePoint(p.take_link(id).map_err(err)?));
                }
            }
        }
        Some(Hook::RawTracePoint(_)) => {
            let p: &mut RawTracePoint = program.try_into().map_err(load_error)?;
            p.load().map_err(load_error)?;
            for hook in hooks {
                if let Hook::RawTracePoint(tp) = hook {
                    let err = attach_error(format!("raw tracepoint {tp}"));
                    let id = p.attach(tp).map_err(&err)?;
                    links.push(OwnedLink::Raw(p.take_link(id).map_err(err)?));
                }
            }
        }
        None => {}
    }
    Ok(())
}

impl Drop for Sensor {
    /// Detaches all programs at once: each detach waits for an RCU grace period (~60 ms here),
    /// which one after the other would add most of a second to every run.
    fn drop(&mut self) {
        let links = std::mem::take(&mut self.links);
        std::thread::scope(|scope| {
            for link in links {
                scope.spawn(move || drop(link));
            }
        });
    }
}

fn take_map<T, E: std::fmt::Display>(
    ebpf: &mut Ebpf,
    name: &'static str,
    convert: impl FnOnce(aya::maps::Map) -> Result<T, E>,
) -> Result<T, SensorError> {
    let map = ebpf.take_map(name).ok_or(SensorError::Map {
        map: name,
        reason: "missing from the eBPF object".to_owned(),
    })?;
    convert(map).map_err(|e| SensorError::Map {
        map: name,
        reason: e.to_string(),
    })
}

/// Kernels before 5.11 charge eBPF maps to RLIMIT_MEMLOCK; lift it (harmless on newer ones).
fn raise_memlock_limit() {
    let limit = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid, initialised struct.
    let _ = unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) };
}
