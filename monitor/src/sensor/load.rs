//! Loading and attaching: the eBPF object is loaded with this kernel's offsets, every
//! program verified (in parallel) and attached; dropping the sensor detaches them.
use std::path::PathBuf;

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap as BpfHashMap, PerCpuArray, RingBuf, lpm_trie::LpmTrie},
    programs::{
        CgroupAttachMode, CgroupSock, CgroupSockAddr, ProgramError, RawTracePoint, TracePoint,
    },
};

use super::{
    OBJECT, OwnedLink, Sensor, SensorConfig, SensorError, SensorStream, cgroup, dispatch,
    error::{attach_error, load_error, object_error},
    error_chain, kill_probe, offsets, privileges,
    programs::{self, CGROUP_PROGRAMS, CGROUP_SOCK_PROGRAMS, ENFORCE_PROGRAMS, Hook, PROGRAMS},
    tracefs,
};

impl Sensor {
    /// Loads and attaches every program. Nothing is watched until [`Sensor::track`] is called.
    pub fn load(config: &SensorConfig) -> Result<Self, SensorError> {
        privileges::check()?;
        let size = config.ring_buffer_bytes;
        if !size.is_power_of_two() || size < 4096 {
            return Err(SensorError::RingBufferSize(size));
        }
        raise_memlock_limit();
        // aya's loader parses the kernel's BTF as it is made, even with `.btf(None)` below (aya
        // 0.14 has no way around it: ~10 ms here); made on the other core while this one
        // checks the hooks and reads the offsets from our own parse of the same BTF.
        let loader = std::thread::Builder::new()
            .name("loader".into())
            .spawn(EbpfLoader::new)
            .map_err(|e| SensorError::Object(format!("cannot start a thread: {e}")))?;
        let tracefs_dir: PathBuf = tracefs::ensure_mounted()?;
        let mut gaps = Vec::new();
        for program in PROGRAMS {
            for hook in program.hooks {
                if let Some((category, name)) = hook.tracepoint()
                    && !tracefs::has_tracepoint(&tracefs_dir, category, &name)
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
        // The build's cgroup, for the socket hooks; required by --enforce. The guard makes
        // none: its builds stay in their users' cgroups, so its hooks go on the cgroup2 root
        // (see `guard_hooks`).
        let mut root_hooks = None;
        let cgroup = match cgroup::cgroup2_mount() {
            Some(root) if config.guard => {
                match std::fs::File::open(&root) {
                    Ok(dir) => root_hooks = Some((dir, root)),
                    Err(e) if config.enforce => {
                        return Err(SensorError::Cgroup(format!(
                            "cannot open the cgroup2 root {}: {e}",
                            root.display()
                        )));
                    }
                    Err(e) => gaps.push(format!(
                        "cannot open the cgroup2 root {} ({e}): connections made through \
                         io_uring are not seen",
                        root.display()
                    )),
                }
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
        let offsets::Offsets {
            kernel: offsets,
            identity,
            socket,
            guard: guard_offsets,
        } = offsets::kernel_offsets(&tracefs_dir)?;
        let cpus = aya::util::nr_cpus().map_err(|(path, e)| {
            SensorError::Object(format!("cannot count CPUs from {path}: {e}"))
        })? as u32;
        let enforce = u32::from(config.enforce);
        let monitor_tgid = std::process::id();
        let guard = u32::from(config.guard);
        let programs: Vec<&programs::Program> = if config.enforce {
            PROGRAMS.iter().chain(ENFORCE_PROGRAMS).collect()
        } else {
            PROGRAMS.iter().collect()
        };
        let (enter_calls, exit_calls) = dispatch::call_masks(&programs);
        let mut loader = loader
            .join()
            .map_err(|_| SensorError::Object("the eBPF loader failed to start".to_owned()))?;
        let mut ebpf = loader
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
            .override_global("GUARD_OFFSETS", &guard_offsets, true)
            .override_global("ENTER_CALLS", &enter_calls, true)
            .override_global("EXIT_CALLS", &exit_calls, true)
            .override_global("SLOT_STATS", dispatch::slot_stats(), true)
            .map_max_entries("EVENTS", size)
            .map_max_entries("SCRATCH", cpus)
            .map_max_entries("PATH_SCRATCH", cpus)
            .map_max_entries("STACK_SCRATCH", cpus)
            .load(OBJECT)
            .map_err(|e| object_error(&e, size))?;
        // Verification is most of the startup time: load (verify) every program first, in
        // parallel, then attach.
        let mut wanted: Vec<&str> = PROGRAMS.iter().map(|p| p.name).collect();
        if cgroup.is_some() || root_hooks.is_some() {
            wanted.extend(CGROUP_PROGRAMS);
            wanted.extend(CGROUP_SOCK_PROGRAMS);
        }
        if config.enforce {
            wanted.extend(ENFORCE_PROGRAMS.iter().map(|p| p.name));
        }
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
        // The dispatchers' arrays are full before the dispatchers are attached.
        #[cfg(target_arch = "x86_64")]
        dispatch::fill(&mut ebpf, &programs)?;
        let mut links = Vec::new();
        let mut deferred = Vec::new();
        for program in programs {
            let hooks: Vec<&'static Hook> = program
                .hooks
                .iter()
                .filter(|h| match h.tracepoint() {
                    Some((c, n)) => tracefs::has_tracepoint(&tracefs_dir, c, &n),
                    None => matches!(h, Hook::RawTracePoint(_)),
                })
                .collect();
            if hooks.is_empty() {
                continue;
            }
            // The guard attaches the system call hooks only while a build runs (dormant.rs).
            if config.guard && hooks.iter().all(|h| h.is_syscall_hook()) {
                deferred.push((program.name, hooks));
                continue;
            }
            attach(&mut ebpf, program.name, &hooks, &mut links)?;
        }
        // A build's own cgroup, or the cgroup2 root (the guard): there the programs run for
        // every cgroup of the machine, beside whatever else is attached (aya attaches through
        // bpf_link, which the kernel always attaches as BPF_F_ALLOW_MULTI, and which rejects the
        // flag itself); for an untracked process each hook is one map lookup that allows.
        let hooks_at = match (&cgroup, &root_hooks) {
            (Some(cg), _) => Some((cg.dir(), cg.path())),
            (None, Some((dir, path))) => Some((dir, path.as_path())),
            (None, None) => None,
        };
        if let Some((dir, path)) = hooks_at {
            let attached = attach_cgroup(&mut ebpf, dir, path, &mut links);
            match attached {
                Ok(()) => {}
                Err(e) if cgroup.is_some() || config.enforce => return Err(e),
                Err(e) => gaps.push(format!(
                    "the socket hooks could not be attached at the cgroup2 root ({e}): \
                     connections made through io_uring are not seen"
                )),
            }
        }
        let tracked = take_map(&mut ebpf, "TRACKED", BpfHashMap::try_from)?;
        let crate_procs = take_map(&mut ebpf, "CRATE_PROCS", BpfHashMap::try_from)?;
        let allow = take_map(&mut ebpf, "ALLOW", LpmTrie::try_from)?;
        let events = take_map(&mut ebpf, "EVENTS", RingBuf::try_from)?;
        let counters = take_map(&mut ebpf, "COUNTERS", PerCpuArray::try_from)?;
        Ok(Self {
            links,
            syscall_links: Vec::new(),
            deferred,
            ebpf,
            tracked,
            crate_procs,
            allow,
            stream: Some(SensorStream::new(events, counters)),
            cgroup,
            gaps,
        })
    }
}

/// Loads (the kernel verifies) every program named in `wanted`, on as many threads as there
/// are CPUs, the heaviest first.
fn load_all(ebpf: &mut Ebpf, wanted: &[&str]) -> Result<(), SensorError> {
    // The programs that take longest to load, longest first: verifying and compiling them
    // (their size counts as much as the instructions verified, now that both are small).
    const HEAVY: [&str; 8] = [
        "sched_process_exec",
        "sys_exit_open_family",
        "sys_exit_compat",
        "sys_exit_send_family",
        "sys_exit_link_source",
        "sys_exit_mmap",
        "sys_exit_write",
        "sys_exit_cred",
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
pub(super) fn attach(
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
        Some(hook) if hook.tracepoint().is_some() => {
            let p: &mut TracePoint = program.try_into().map_err(|e| load_error(name, e))?;
            for hook in hooks {
                if let Some((category, tp)) = hook.tracepoint() {
                    let err = failed(format!("tracepoint {category}/{tp}"));
                    let id = p.attach(category, &tp).map_err(&err)?;
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
        // Dispatched system calls (x86_64) are in the dispatchers' arrays, not attached.
        Some(_) | None => {}
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
            #[cfg(target_arch = "x86_64")]
            dispatch::print_handler_runs(&self.ebpf);
        }
        let mut links = std::mem::take(&mut self.links);
        links.append(&mut self.syscall_links);
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

pub(super) fn take_map<T, E: std::error::Error>(
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

/// Attaches the cgroup socket programs to the cgroup `dir` (at `path`).
fn attach_cgroup(
    ebpf: &mut Ebpf,
    dir: &std::fs::File,
    path: &std::path::Path,
    links: &mut Vec<OwnedLink>,
) -> Result<(), SensorError> {
    for name in CGROUP_PROGRAMS {
        let program = ebpf.program_mut(name).ok_or_else(|| {
            SensorError::Object(format!("program `{name}` is missing from the eBPF object"))
        })?;
        let p: &mut CgroupSockAddr = program
            .try_into()
            .map_err(|e: ProgramError| load_error(name, e))?;
        let failed = |e: ProgramError| attach_error(name, format!("cgroup {}", path.display()), &e);
        let id = p.attach(dir, CgroupAttachMode::Single).map_err(failed)?;
        links.push(OwnedLink::Cgroup(p.take_link(id).map_err(failed)?));
    }
    for name in CGROUP_SOCK_PROGRAMS {
        let program = ebpf.program_mut(name).ok_or_else(|| {
            SensorError::Object(format!("program `{name}` is missing from the eBPF object"))
        })?;
        let p: &mut CgroupSock = program
            .try_into()
            .map_err(|e: ProgramError| load_error(name, e))?;
        let failed = |e: ProgramError| attach_error(name, format!("cgroup {}", path.display()), &e);
        let id = p.attach(dir, CgroupAttachMode::Single).map_err(failed)?;
        links.push(OwnedLink::CgroupSock(p.take_link(id).map_err(failed)?));
    }
    Ok(())
}
