//! Why the sensor could not be loaded or driven, and what the user can do about it: the
//! errors and the advice drawn from their errno.
use aya::programs::ProgramError;
use thiserror::Error;

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
    /// A map of the sensor could not be created.
    #[error("creating the sensor's eBPF maps failed: {reason}. {advice}")]
    MapCreate {
        /// The error, with its errno.
        reason: String,
        /// What the user can do.
        advice: String,
    },
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
    #[error("attaching eBPF program `{program}` to {hook} failed: {reason}. {advice}")]
    Attach {
        /// Program name.
        program: String,
        /// The hook.
        hook: String,
        /// Why, with the errno.
        reason: String,
        /// What the user can do.
        advice: String,
    },
    /// The build's cgroup could not be set up.
    #[error("cgroup: {0}")]
    Cgroup(String),
    /// `--enforce` without cgroup v2.
    #[error(
        "--enforce needs a cgroup v2 hierarchy (none is mounted, see /proc/mounts): without one \
         buildwatch cannot refuse connections, and will not pretend to. Mount cgroup2 (e.g. \
         `mount -t cgroup2 none /sys/fs/cgroup/unified`) or run without --enforce"
    )]
    NoCgroupV2,
    /// `--enforce` on a kernel that cannot kill from a tracepoint.
    #[error(
        "--enforce kills build code in the kernel with bpf_send_signal, which this kernel refuses \
         to a tracepoint program ({0}; it needs Linux 5.3 or later): buildwatch cannot stop a \
         secret being read, and will not pretend to. Run without --enforce, or on a newer kernel"
    )]
    NoKillSupport(String),
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

pub(super) fn load_error(name: &str, e: ProgramError) -> SensorError {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => SensorError::Verifier {
            program: name.to_owned(),
            reason: io_error.to_string(),
            log: verifier_log.to_string(),
        },
        other => SensorError::Object(format!("program `{name}`: {}", error_chain(&other))),
    }
}

/// An error and its sources, `a: b: c`. aya's syscall errors keep the errno in their source
/// (`bpf_link_create` failed: No such file or directory (os error 2)).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

/// The errno at the bottom of an error chain, if any.
pub(super) fn errno_of(error: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut current = Some(error);
    let mut found = None;
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            found = io.raw_os_error().or(found);
        }
        current = e.source();
    }
    found
}

pub(super) fn attach_error(program: &str, hook: String, e: &ProgramError) -> SensorError {
    let cgroup = hook.starts_with("cgroup ");
    let advice = match errno_of(e) {
        Some(libc::ENOENT) if cgroup => {
            "The build's cgroup was removed while buildwatch was starting (by another program \
             managing cgroups?); run buildwatch again"
        }
        Some(libc::EPERM | libc::EACCES) => {
            "The kernel refused: buildwatch needs root (or CAP_BPF, CAP_PERFMON and, for cgroup \
             hooks, CAP_NET_ADMIN), and a security module or lockdown may forbid it; run it with \
             sudo"
        }
        Some(libc::E2BIG | libc::ENOSPC) => {
            "Too many eBPF programs are attached to this hook already (other tools, or stuck \
             runs); see `bpftool perf` and `bpftool cgroup tree`"
        }
        Some(libc::EBUSY | libc::EEXIST) if cgroup => {
            "Another program is attached to the build's cgroup in exclusive mode; run buildwatch \
             again"
        }
        Some(libc::ENOMEM) => "The kernel is out of memory; retry when the machine is less loaded",
        _ => "If this persists, report it with the output of `buildwatch -v` and `uname -r`",
    };
    SensorError::Attach {
        program: program.to_owned(),
        hook,
        reason: error_chain(e),
        advice: advice.to_owned(),
    }
}

/// Loading the object creates the maps: the usual failure is memory for the ring buffer.
pub(super) fn object_error(e: &aya::EbpfError, ring_buffer_bytes: u32) -> SensorError {
    let reason = error_chain(e);
    match e {
        aya::EbpfError::MapError(_) => {
            let advice = match errno_of(e) {
                Some(libc::ENOMEM | libc::E2BIG) => format!(
                    "The ring buffer ({} MiB) or another map does not fit in the memory this \
                     process may use (its memory cgroup limit, or the machine's); lower \
                     --ring-buffer-size or raise the limit",
                    ring_buffer_bytes >> 20
                ),
                Some(libc::EPERM) => "The kernel refused to create eBPF maps: run buildwatch \
                     as root (or with CAP_BPF and CAP_PERFMON); on kernels before 5.11 also \
                     raise `ulimit -l`"
                    .to_owned(),
                _ => "If this persists, report it with the output of `uname -r`".to_owned(),
            };
            SensorError::MapCreate { reason, advice }
        }
        _ => SensorError::Object(reason),
    }
}
