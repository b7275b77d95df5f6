//! The running sensor's maps and handles: the tracked set, the crate groups and their allow
//! lists (--enforce), the kill switch, the integrity check, the event stream.
use std::os::fd::{AsFd as _, OwnedFd};

use aya::maps::lpm_trie::Key;
use monitor_common::AllowKey;

use super::{
    Integrity, KillSwitch, Sensor, SensorError, SensorStream, cgroup, error_chain, integrity,
    programs::{CGROUP_PROGRAMS, CGROUP_SOCK_PROGRAMS},
};

/// The error of a map operation on map `map`.
pub(super) fn map_failed(map: &'static str) -> impl Fn(aya::maps::MapError) -> SensorError + Copy {
    move |e| SensorError::Map {
        map,
        reason: error_chain(&e),
    }
}

impl Sensor {
    /// The eBPF object's map `name`, typed (a hash map, an array: whatever `M` is).
    pub(super) fn named_map<'a, M>(&'a mut self, name: &'static str) -> Result<M, SensorError>
    where
        M: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self
            .ebpf
            .map_mut(name)
            .ok_or_else(|| SensorError::Object(format!("map {name} is missing")))?;
        M::try_from(map).map_err(map_failed(name))
    }

    /// Starts watching process `pid` (and, through fork, all its descendants), and moves it
    /// into the build's cgroup unless it was born there (`in_cgroup`: cloned into
    /// [`Sensor::cgroup_dir`]).
    pub fn track(&mut self, pid: u32, in_cgroup: bool) -> Result<(), SensorError> {
        self.tracked
            .insert(pid, 1, 0)
            .map_err(|e| SensorError::Map {
                map: "TRACKED",
                reason: error_chain(&e),
            })?;
        if let Some(cg) = &self.cgroup
            && !in_cgroup
        {
            cg.enroll(pid)?;
        }
        Ok(())
    }

    /// The build's cgroup directory, to start the command in (`CLONE_INTO_CGROUP`): a process
    /// born there needs no migration, whose first one in a run waits for an RCU grace period
    /// (5-10 ms of the startup here).
    pub fn cgroup_dir(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.cgroup.as_ref().map(|cg| cg.dir().as_fd())
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
        self.allow
            .insert(&allow_key(group, addr, prefix, port), 1, 0)
            .map_err(|e| SensorError::Map {
                map: "ALLOW",
                reason: error_chain(&e),
            })
    }

    /// Takes back an allowance [`Self::allow`] made (the guard, when a build ended); an
    /// allowance already gone is no error.
    pub fn disallow(&mut self, group: u32, addr: std::net::IpAddr, prefix: u8, port: Option<u16>) {
        let _ = self.allow.remove(&allow_key(group, addr, prefix, port));
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

/// The `ALLOW` key of an allowance.
fn allow_key(group: u32, addr: std::net::IpAddr, prefix: u8, port: Option<u16>) -> Key<AllowKey> {
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
    Key::new(AllowKey::FIXED_BITS + u32::from(prefix.min(max)), key)
}
