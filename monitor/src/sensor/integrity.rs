//! Whether the sensor is still whole during the run: a build that becomes root can detach
//! buildwatch's cgroup programs (`BPF_LINK_DETACH` on their links, found by id), which leaves
//! every descriptor buildwatch holds valid and no event saying so; the only sign would be the
//! events that stop coming. So the run loop asks the kernel, about once a second, which
//! programs are attached to the build's cgroup (`BPF_PROG_QUERY`) and compares with what was
//! attached at start.
//!
//! The same check finds processes of the build moved out of its cgroup (by a root process the
//! sensor does not watch, or unseen): every tracked process must be in the build's cgroup or
//! below it, or the cgroup hooks (io_uring connections, `--enforce`) no longer apply to it.
//!
//! The tracepoint and raw-tracepoint links need no such check: the kernel gives them no detach
//! operation (`bpf_perf_link_lops` and `bpf_raw_tp_link_lops` have none), so they end only when
//! their last descriptor is closed, and buildwatch holds it (taking a copy needs `pidfd_getfd`
//! or ptrace on buildwatch, which already makes the run incomplete). The maps live as long as
//! the programs and descriptors that hold them.
//! <https://github.com/torvalds/linux/blob/v6.18/kernel/bpf/syscall.c> (bpf_link_ops, link_detach)
//! <https://github.com/torvalds/linux/blob/v6.18/include/uapi/linux/bpf.h> (BPF_PROG_QUERY)
use std::os::fd::{AsRawFd as _, OwnedFd};

use super::kill::tracked_pids;

/// `BPF_PROG_QUERY` (enum bpf_cmd).
const BPF_PROG_QUERY: libc::c_long = 16;
/// `BPF_MAP_LOOKUP_ELEM` (enum bpf_cmd).
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
/// The most tracked processes looked at in one check (a build has far fewer alive at once).
const MAX_PIDS: usize = 8192;

/// The cgroup attach type of each cgroup program (enum bpf_attach_type).
pub(super) fn attach_type(program: &str) -> Option<u32> {
    Some(match program {
        "cgroup_sock_create" => 2,
        "cgroup_connect4" => 10,
        "cgroup_connect6" => 11,
        "cgroup_sendmsg4" => 14,
        "cgroup_sendmsg6" => 15,
        _ => return None,
    })
}

/// A program attached at start, to be found attached at every check.
#[derive(Debug)]
pub(super) struct Attached {
    pub name: &'static str,
    pub attach_type: u32,
    pub program_id: u32,
}

/// What it takes to check, from any thread, that the sensor's cgroup programs are attached.
#[derive(Debug)]
pub struct Integrity {
    cgroup: OwnedFd,
    cgroup_path: String,
    /// The build's cgroup as `/proc/PID/cgroup` names it (`/buildwatch-...`).
    cgroup_name: String,
    /// The tracked set (`TRACKED`, tgid → 1).
    tracked: OwnedFd,
    attached: Vec<Attached>,
}

impl Integrity {
    pub(super) fn new(
        cgroup: OwnedFd,
        cgroup_path: String,
        cgroup_name: String,
        tracked: OwnedFd,
        attached: Vec<Attached>,
    ) -> Self {
        Self {
            cgroup,
            cgroup_path,
            cgroup_name,
            tracked,
            attached,
        }
    }

    /// What is no longer attached, one sentence each (empty: all is in place).
    pub fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for a in &self.attached {
            match query(&self.cgroup, a.attach_type) {
                Ok(ids) if ids.contains(&a.program_id) => {}
                Ok(_) => problems.push(format!(
                    "buildwatch's eBPF program `{}` (id {}) is no longer attached to the build's \
                     cgroup {}: something detached it during the run (a process of the build \
                     running as root?), so what it watched went unseen from then on",
                    a.name, a.program_id, self.cgroup_path
                )),
                Err(e) => problems.push(format!(
                    "cannot check that buildwatch's eBPF program `{}` is still attached to the \
                     build's cgroup {}: BPF_PROG_QUERY failed: {e}",
                    a.name, self.cgroup_path
                )),
            }
        }
        problems.extend(self.escaped());
        problems
    }

    /// Tracked processes that are no longer in the build's cgroup (or one below it).
    fn escaped(&self) -> Vec<String> {
        let mut pids = vec![0u32; MAX_PIDS];
        let n = tracked_pids(self.tracked.as_raw_fd(), &mut pids);
        let inside = |path: &str| {
            path == self.cgroup_name
                || path
                    .strip_prefix(self.cgroup_name.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        let mut problems = Vec::new();
        for &pid in &pids[..n] {
            let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
                continue;
            };
            let Some(path) = text.lines().find_map(|l| l.strip_prefix("0::")) else {
                continue;
            };
            // Still tracked after the read: the process did not exit (and its pid was not
            // reused by another outside the build) in between.
            if inside(path) || !self.is_tracked(pid) {
                continue;
            }
            problems.push(format!(
                "process {pid} of the build is no longer in the build's cgroup {} (now in {}): \
                 something moved it out during the run (a process of the build running as \
                 root?), so the cgroup hooks (connections through io_uring, --enforce's \
                 refusals) no longer applied to it",
                self.cgroup_path,
                path.escape_debug()
            ));
        }
        problems
    }

    fn is_tracked(&self, pid: u32) -> bool {
        let mut value = 0u32;
        // union bpf_attr, map_elem: map_fd @0, key @8, value @16, flags @24.
        let mut attr = [0u64; 4];
        attr[0] = u64::from(self.tracked.as_raw_fd() as u32);
        attr[1] = (&raw const pid) as u64;
        attr[2] = (&raw mut value) as u64;
        // SAFETY: bpf(2) with an attr of the documented layout; the kernel reads a u32 key and
        // writes a u32 value (TRACKED's types) into locals that outlive the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_ELEM,
                attr.as_mut_ptr(),
                size_of_val(&attr) as libc::c_uint,
            )
        };
        ret == 0
    }
}

/// The ids of the programs attached to cgroup `cgroup` for `attach_type`.
fn query(cgroup: &OwnedFd, attach_type: u32) -> std::io::Result<Vec<u32>> {
    // Far more than buildwatch attaches (one per type), so that another program attached in
    // multi mode does not make the answer ENOSPC.
    let mut ids = [0u32; 64];
    // union bpf_attr, query: target_fd @0, attach_type @4, query_flags @8, attach_flags @12,
    // prog_ids @16, prog_cnt @24; the rest zero.
    let mut attr = [0u64; 16];
    attr[0] = u64::from(cgroup.as_raw_fd() as u32) | (u64::from(attach_type) << 32);
    attr[2] = ids.as_mut_ptr() as u64;
    attr[3] = ids.len() as u64;
    // SAFETY: bpf(2) with a zeroed attr of the documented layout; the kernel writes at most
    // prog_cnt ids into `ids`, which outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_QUERY,
            attr.as_mut_ptr(),
            size_of_val(&attr) as libc::c_uint,
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let count = (attr[3] as u32 as usize).min(ids.len());
    Ok(ids[..count].to_vec())
}
