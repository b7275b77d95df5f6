//! The sensor: loads and attaches the eBPF programs, seeds the tracked set, and streams decoded
//! events out of the ring buffer. The only module that touches aya.
mod btf;
pub mod cgroup;
mod integrity;
mod kill;
mod kill_probe;
mod offsets;
mod persist;
mod privileges;
mod programs;
mod protected;
mod roots;
mod stream;
pub mod tracefs;

use std::{
    os::fd::{AsFd as _, OwnedFd},
    path::PathBuf,
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{
        HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf,
        lpm_trie::{Key, LpmTrie},
    },
    programs::{
        CgroupAttachMode, CgroupSock, CgroupSockAddr, ProgramError, RawTracePoint, TracePoint,
        cgroup_sock::CgroupSockLink, cgroup_sock_addr::CgroupSockAddrLink,
        raw_trace_point::RawTracePointLink, trace_point::TracePointLink,
    },
};
use monitor_common::AllowKey;
use thiserror::Error;

pub use integrity::Integrity;
pub use kill::KillSwitch;
pub use persist::PersistSet;
use programs::{CGROUP_PROGRAMS, CGROUP_SOCK_PROGRAMS, ENFORCE_PROGRAMS, Hook, PROGRAMS};
pub use protected::ProtectedSet;
pub use roots::{GuardRoots, identity_of};
pub use stream::{SensorStream, StreamMessage};

/// The names of the sensor's eBPF programs (the attestation's `tracePolicy.hooks`; those a
/// kernel lacks are its coverage gaps).
pub fn program_names() -> Vec<&'static str> {
    PROGRAMS
        .iter()
        .map(|p| p.name)
        .chain(CGROUP_PROGRAMS)
        .chain(CGROUP_SOCK_PROGRAMS)
        .collect()
}

/// Default ring buffer size: 16 MiB.
pub const DEFAULT_RING_BUFFER_BYTES: u32 = 16 * 1024 * 1024;

/// How to load the sensor.
#[derive(Clone, Debug)]
pub struct SensorConfig {
    /// Ring buffer size in bytes (a power of two, at least one page).
    pub ring_buffer_bytes: u32,
    /// Refuse network that profiles do not allow to crate code (needs cgroup v2).
    pub enforce: bool,
    /// The uid the build runs as: a program of the build that comes out of exec with more
    /// privileges than this user's is reported (and killed under `enforce`). 0: the build runs
    /// as root, and nothing is checked.
    pub build_uid: u32,
    /// `buildwatch guard`: no command is tracked; the kernel adopts every process that execs a
    /// build root (see [`GuardRoots`]). No build cgroup is made (adopted processes stay where
    /// their user's session put them).
    pub guard: bool,
}

impl Default for SensorConfig {
    fn default() -> Self {
        Self {
            ring_buffer_bytes: DEFAULT_RING_BUFFER_BYTES,
            enforce: false,
            build_uid: 0,
            guard: false,
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

/// The eBPF object, built by monitor/build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/monitor"));

/// An attachment, owned so that detaching can be done in parallel.
enum OwnedLink {
    TracePoint(#[expect(dead_code, reason = "held for its Drop, which detaches")] TracePointLink),
    Raw(#[expect(dead_code, reason = "held for its Drop, which detaches")] RawTracePointLink),
    Cgroup(#[expect(dead_code, reason = "held for its Drop, which detaches")] CgroupSockAddrLink),
    CgroupSock(#[expect(dead_code, reason = "held for its Drop, which detaches")] CgroupSockLink),
}

/// The loaded and attached sensor. Dropping it detaches every program.
pub struct Sensor {
    links: Vec<OwnedLink>,
    ebpf: Ebpf,
    tracked: BpfHashMap<MapData, u32, u32>,
    crate_procs: BpfHashMap<MapData, u32, u32>,
    allow: LpmTrie<MapData, AllowKey, u8>,
    stream: Option<SensorStream>,
    cgroup: Option<cgroup::BuildCgroup>,
    gaps: Vec<String>,
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
        let mut gaps = Vec::new();
        for program in PROGRAMS {
            for hook in program.hooks {
                if let Hook::TracePoint(category, name) = hook
                    && !tracefs::has_tracepoint(&tracefs_dir, category, name)
                {
                    if program.required {
                        return Err(SensorError::MissingHook {
                            hook: format!("tracepoint {category}/{name}"),
                            detail: format!(
                                "no {}/events/{category}/{name}",
                                tracefs_dir.display()
                            ),
                        });
                    }
                    gaps.push(format!(
                        "tracepoint {category}/{name} is missing: {} is not seen",
                        program.name
                    ));
                }
            }
        }
        if config.enforce {
            kill_probe::send_signal_supported().map_err(SensorError::NoKillSupport)?;
        }
        // The build's cgroup, for the socket hooks; required by --enforce.
        let cgroup = match cgroup::cgroup2_mount() {
            Some(_) if config.guard => {
                gaps.push(
                    "guard mode: builds stay in their own cgroups, so connections made through io_uring are not seen and --enforce is not available".to_owned(),
                );
                None
            }
            Some(root) => Some(cgroup::BuildCgroup::create(&root)?),
            None if config.enforce => return Err(SensorError::NoCgroupV2),
            None => {
                gaps.push(
                    "no cgroup v2 hierarchy: connections made through io_uring are not seen (--enforce needs it too)".to_owned(),
                );
                None
            }
        };
        let (offsets, identity, socket) = offsets::kernel_offsets(&tracefs_dir)?;
        let cpus = aya::util::nr_cpus().map_err(|(path, e)| {
            SensorError::Object(format!("cannot count CPUs from {path}: {e}"))
        })? as u32;
        let enforce = u32::from(config.enforce);
        let monitor_tgid = std::process::id();
        let guard = u32::from(config.guard);
        let mut ebpf = EbpfLoader::new()
            // The programs use no CO-RE relocations (offsets come in OFFSETS), so aya need not
            // parse the kernel's BTF a second time.
            .btf(None)
            .override_global("OFFSETS", &offsets, true)
            .override_global("ENFORCE", &enforce, true)
            .override_global("TI_STATUS", &offsets.task_ti_status, true)
            .override_global("BUILD_UID", &config.build_uid, true)
            .override_global("MONITOR_TGID", &monitor_tgid, true)
            .override_global("IDENTITY_OFFSETS", &identity, true)
            .override_global("SOCKET_OFFSETS", &socket, true)
            .override_global("GUARD", &guard, true)
            .map_max_entries("EVENTS", size)
            .map_max_entries("SCRATCH", cpus)
            .map_max_entries("PATH_SCRATCH", cpus)
            .map_max_entries("STACK_SCRATCH", cpus)
            .load(OBJECT)
            .map_err(|e| object_error(&e, size))?;
        // Verification is most of the startup time: load (verify) every program first, in
        // parallel, then attach.
        let mut wanted: Vec<&str> = PROGRAMS.iter().map(|p| p.name).collect();
        if cgroup.is_some() {
            wanted.extend(CGROUP_PROGRAMS);
            wanted.extend(CGROUP_SOCK_PROGRAMS);
        }
        let programs: Vec<&programs::Program> = if config.enforce {
            wanted.extend(ENFORCE_PROGRAMS.iter().map(|p| p.name));
            PROGRAMS.iter().chain(ENFORCE_PROGRAMS).collect()
        } else {
            PROGRAMS.iter().collect()
        };
        load_all(&mut ebpf, &wanted)?;
        if std::env::var_os("BUILDWATCH_VERIFIER_STATS").is_some() {
            for (name, program) in ebpf.programs() {
                if let Ok(info) = program.info() {
                    eprintln!(
                        "verifier: {name}: {} instructions verified",
                        info.verified_instruction_count().unwrap_or(0)
                    );
                }
            }
        }
        let mut links = Vec::new();
        for program in programs {
            let hooks: Vec<&Hook> = program
                .hooks
                .iter()
                .filter(|h| match h {
                    Hook::TracePoint(c, n) => tracefs::has_tracepoint(&tracefs_dir, c, n),
                    Hook::RawTracePoint(_) => true,
                })
                .collect();
            if hooks.is_empty() {
                continue;
            }
            attach(&mut ebpf, program.name, &hooks, &mut links)?;
        }
        if let Some(cg) = &cgroup {
            for name in CGROUP_PROGRAMS {
                let program = ebpf.program_mut(name).ok_or_else(|| {
                    SensorError::Object(format!("program `{name}` is missing from the eBPF object"))
                })?;
                let p: &mut CgroupSockAddr = program
                    .try_into()
                    .map_err(|e: ProgramError| load_error(name, e))?;
                let failed = |e: ProgramError| {
                    attach_error(name, format!("cgroup {}", cg.path().display()), &e)
                };
                let id = p
                    .attach(cg.dir(), CgroupAttachMode::Single)
                    .map_err(failed)?;
                links.push(OwnedLink::Cgroup(p.take_link(id).map_err(failed)?));
            }
            for name in CGROUP_SOCK_PROGRAMS {
                let program = ebpf.program_mut(name).ok_or_else(|| {
                    SensorError::Object(format!("program `{name}` is missing from the eBPF object"))
                })?;
                let p: &mut CgroupSock = program
                    .try_into()
                    .map_err(|e: ProgramError| load_error(name, e))?;
                let failed = |e: ProgramError| {
                    attach_error(name, format!("cgroup {}", cg.path().display()), &e)
                };
                let id = p
                    .attach(cg.dir(), CgroupAttachMode::Single)
                    .map_err(failed)?;
                links.push(OwnedLink::CgroupSock(p.take_link(id).map_err(failed)?));
            }
        }
        let tracked = take_map(&mut ebpf, "TRACKED", BpfHashMap::try_from)?;
        let crate_procs = take_map(&mut ebpf, "CRATE_PROCS", BpfHashMap::try_from)?;
        let allow = take_map(&mut ebpf, "ALLOW", LpmTrie::try_from)?;
        let events = take_map(&mut ebpf, "EVENTS", RingBuf::try_from)?;
        let counters = take_map(&mut ebpf, "COUNTERS", PerCpuArray::try_from)?;
        Ok(Self {
            links,
            ebpf,
            tracked,
            crate_procs,
            allow,
            stream: Some(SensorStream::new(events, counters)),
            cgroup,
            gaps,
        })
    }

    /// Starts watching process `pid` (and, through fork, all its descendants), and moves it
    /// into the build's cgroup.
    pub fn track(&mut self, pid: u32) -> Result<(), SensorError> {
        self.tracked
            .insert(pid, 1, 0)
            .map_err(|e| SensorError::Map {
                map: "TRACKED",
                reason: error_chain(&e),
            })?;
        if let Some(cg) = &self.cgroup {
            cg.enroll(pid)?;
        }
        Ok(())
    }

    /// What it takes to kill every process of the build (see [`KillSwitch`]), for the
    /// watchdog and for buildwatch itself.
    pub fn kill_switch(&self) -> Result<KillSwitch, SensorError> {
        use aya::maps::IterableMap as _;
        let tracked = self
            .tracked
            .map()
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| SensorError::Map {
                map: "TRACKED",
                reason: format!("cannot duplicate its descriptor: {e}"),
            })?;
        // Missing before Linux 5.14: the process group and the tracked set remain.
        let cgroup_kill = self.cgroup.as_ref().and_then(|cg| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(cg.path().join("cgroup.kill"))
                .ok()
                .map(OwnedFd::from)
        });
        Ok(KillSwitch::new(cgroup_kill, tracked))
    }

    /// What it takes to check, during the run, that the cgroup programs are still attached
    /// (None without a cgroup).
    pub fn integrity(&self) -> Result<Option<Integrity>, SensorError> {
        let Some(cg) = &self.cgroup else {
            return Ok(None);
        };
        let mut attached = Vec::new();
        for name in CGROUP_PROGRAMS.into_iter().chain(CGROUP_SOCK_PROGRAMS) {
            let Some(attach_type) = integrity::attach_type(name) else {
                continue;
            };
            let info = self
                .ebpf
                .program(name)
                .ok_or_else(|| {
                    SensorError::Object(format!("program `{name}` is missing from the eBPF object"))
                })?
                .info()
                .map_err(|e| {
                    SensorError::Object(format!("program `{name}`: {}", error_chain(&e)))
                })?;
            attached.push(integrity::Attached {
                name,
                attach_type,
                program_id: info.id(),
            });
        }
        let dir =
            cg.dir().as_fd().try_clone_to_owned().map_err(|e| {
                SensorError::Cgroup(format!("cannot duplicate its descriptor: {e}"))
            })?;
        use aya::maps::IterableMap as _;
        let tracked = self
            .tracked
            .map()
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| SensorError::Map {
                map: "TRACKED",
                reason: format!("cannot duplicate its descriptor: {e}"),
            })?;
        // How /proc/PID/cgroup names it: its path below the cgroup v2 mount.
        let name = cgroup::cgroup2_mount()
            .and_then(|root| {
                cg.path()
                    .strip_prefix(root)
                    .ok()
                    .map(|rel| format!("/{}", rel.display()))
            })
            .ok_or_else(|| {
                SensorError::Cgroup(format!(
                    "{} is not below the cgroup v2 mount",
                    cg.path().display()
                ))
            })?;
        Ok(Some(Integrity::new(
            dir,
            cg.path().display().to_string(),
            name,
            tracked,
            attached,
        )))
    }

    /// What this kernel (or machine) does not let the sensor see.
    pub fn coverage_gaps(&self) -> &[String] {
        &self.gaps
    }

    /// Tells the cgroup hooks which crate group process `tgid` belongs to (see
    /// `monitor_common::GROUP_RUSTC`); its network is checked against that group's allow list.
    pub fn set_crate_group(&mut self, tgid: u32, group: u32) -> Result<(), SensorError> {
        self.crate_procs
            .insert(tgid, group, 0)
            .map_err(|e| SensorError::Map {
                map: "CRATE_PROCS",
                reason: error_chain(&e),
            })
    }

    /// The processes the kernel counts as crate code, with their groups.
    pub fn crate_groups(&self) -> Vec<(u32, u32)> {
        self.crate_procs.iter().filter_map(Result::ok).collect()
    }

    /// Allows crate group `group` to reach `addr`/`prefix` (all ports when `port` is None).
    pub fn allow(
        &mut self,
        group: u32,
        addr: std::net::IpAddr,
        prefix: u8,
        port: Option<u16>,
    ) -> Result<(), SensorError> {
        let (family, bytes, max) = match addr {
            std::net::IpAddr::V4(a) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&a.octets());
                (libc::AF_INET as u16, b, 32)
            }
            std::net::IpAddr::V6(a) => (libc::AF_INET6 as u16, a.octets(), 128),
        };
        let key = AllowKey {
            group,
            port: port.unwrap_or(0).to_be(),
            family,
            addr: bytes,
        };
        let bits = AllowKey::FIXED_BITS + u32::from(prefix.min(max));
        self.allow
            .insert(&Key::new(bits, key), 1, 0)
            .map_err(|e| SensorError::Map {
                map: "ALLOW",
                reason: error_chain(&e),
            })
    }

    /// The event stream, to be moved to the reader thread. Only available once.
    pub fn take_stream(&mut self) -> Option<SensorStream> {
        self.stream.take()
    }

    /// Stops watching process `pid` (guard: a build's leftovers once it has been reported).
    pub fn untrack(&mut self, pid: u32) {
        let _ = self.tracked.remove(&pid);
    }

    /// The kernel's ids of the sensor's programs and maps (to check that they are gone once
    /// the sensor has been dropped).
    pub fn object_ids(&self) -> (Vec<u32>, Vec<u32>) {
        let programs = self
            .ebpf
            .programs()
            .filter_map(|(_, p)| p.info().ok().map(|i| i.id()))
            .collect();
        use aya::maps::IterableMap as _;
        let maps = [self.tracked.map(), self.crate_procs.map()]
            .iter()
            .filter_map(|m| m.info().ok().map(|i| i.id()))
            .collect();
        (programs, maps)
    }

    /// Number of programs attached.
    pub fn program_count(&self) -> usize {
        self.ebpf.programs().count()
    }
}

fn load_error(name: &str, e: ProgramError) -> SensorError {
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

/// Loads (the kernel verifies) every program named in `wanted`, on as many threads as there
/// are CPUs, the heaviest first.
fn load_all(ebpf: &mut Ebpf, wanted: &[&str]) -> Result<(), SensorError> {
    // The programs with path walks and stack scans take most of the verifier's time.
    const HEAVY: [&str; 8] = [
        "sched_process_exec",
        "sys_exit_open_family",
        "raw_sys_exit",
        "sys_exit_link_source",
        "sys_exit_send_family",
        "sys_exit_mmap",
        "sched_process_fork",
        "sys_exit_connect",
    ];
    let mut jobs: Vec<(&str, &mut aya::programs::Program)> = ebpf
        .programs_mut()
        .filter(|(name, _)| wanted.contains(name))
        .collect();
    jobs.sort_by_key(|(name, _)| std::cmp::Reverse(HEAVY.iter().rev().position(|h| h == name)));
    jobs.reverse();
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let queue = std::sync::Mutex::new(jobs);
    let first_error = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let job = queue.lock().ok().and_then(|mut q| q.pop());
                    let Some((name, program)) = job else { break };
                    let result = match program {
                        aya::programs::Program::TracePoint(p) => p.load(),
                        aya::programs::Program::RawTracePoint(p) => p.load(),
                        aya::programs::Program::CgroupSockAddr(p) => p.load(),
                        aya::programs::Program::CgroupSock(p) => p.load(),
                        _ => Ok(()),
                    };
                    if let Err(e) = result
                        && let Ok(mut slot) = first_error.lock()
                        && slot.is_none()
                    {
                        *slot = Some(load_error(name, e));
                    }
                }
            });
        }
    });
    match first_error.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}

/// Attaches the (loaded) program `name` to every hook in `hooks`.
fn attach(
    ebpf: &mut Ebpf,
    name: &str,
    hooks: &[&Hook],
    links: &mut Vec<OwnedLink>,
) -> Result<(), SensorError> {
    let program = ebpf.program_mut(name).ok_or_else(|| {
        SensorError::Object(format!("program `{name}` is missing from the eBPF object"))
    })?;
    let failed = |hook: String| move |e: ProgramError| attach_error(name, hook.clone(), &e);
    match hooks.first() {
        Some(Hook::TracePoint(..)) => {
            let p: &mut TracePoint = program.try_into().map_err(|e| load_error(name, e))?;
            for hook in hooks {
                if let Hook::TracePoint(category, tp) = hook {
                    let err = failed(format!("tracepoint {category}/{tp}"));
                    let id = p.attach(category, tp).map_err(&err)?;
                    links.push(OwnedLink::TracePoint(p.take_link(id).map_err(err)?));
                }
            }
        }
        Some(Hook::RawTracePoint(_)) => {
            let p: &mut RawTracePoint = program.try_into().map_err(|e| load_error(name, e))?;
            for hook in hooks {
                if let Hook::RawTracePoint(tp) = hook {
                    let err = failed(format!("raw tracepoint {tp}"));
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
    /// Detaching a tracepoint program waits for RCU grace periods (30-60 ms each here), and the
    /// kernel serializes them: with ~40 attachments that is seconds added to every run. So the
    /// last references are handed to a short-lived reaper process: a forked child that holds
    /// copies of every descriptor, waits until this process has let go of its own, then exits,
    /// paying for the detaches while buildwatch returns at once. If the fork fails, the
    /// detaches happen here.
    fn drop(&mut self) {
        // For `cargo xtask bench`: each program's in-kernel cost over the run. The kernel counts
        // runs and run time only while `kernel.bpf_stats_enabled` is 1 (which the bench sets for
        // its profiling run alone: counting costs two clock reads per run).
        if std::env::var_os("BUILDWATCH_PROGRAM_STATS").is_some() {
            for (name, program) in self.ebpf.programs() {
                if let Ok(info) = program.info() {
                    eprintln!(
                        "program: {name}: {} runs, {} ns",
                        info.run_count(),
                        info.run_time().as_nanos()
                    );
                }
            }
        }
        let links = std::mem::take(&mut self.links);
        let Ok((read_end, write_end)) = nix::unistd::pipe() else {
            drop(links);
            return;
        };
        // SAFETY: the child only calls read(2) and _exit(2), both async-signal-safe, on a
        // descriptor created before the fork.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => {
                let mut byte = 0u8;
                // SAFETY: reading one byte into a local from a valid descriptor.
                unsafe {
                    libc::close(std::os::fd::AsRawFd::as_raw_fd(&write_end));
                    libc::setsid();
                    libc::read(
                        std::os::fd::AsRawFd::as_raw_fd(&read_end),
                        (&raw mut byte).cast(),
                        1,
                    );
                    libc::_exit(0)
                }
            }
            Ok(nix::unistd::ForkResult::Parent { .. }) => {
                drop(read_end);
                // The reaper holds references: these closes are quick.
                drop(links);
                // Closing the pipe lets the reaper go.
                drop(write_end);
            }
            Err(_) => {
                drop(read_end);
                drop(write_end);
                drop(links);
            }
        }
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
fn errno_of(error: &(dyn std::error::Error + 'static)) -> Option<i32> {
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

fn attach_error(program: &str, hook: String, e: &ProgramError) -> SensorError {
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
fn object_error(e: &aya::EbpfError, ring_buffer_bytes: u32) -> SensorError {
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

fn take_map<T, E: std::error::Error>(
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
        reason: error_chain(&e),
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
