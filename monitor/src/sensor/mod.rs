//! The sensor: loads and attaches the eBPF programs, seeds the tracked set, and streams decoded
//! events out of the ring buffer. The only module that touches aya.
mod btf;
pub mod cgroup;
mod dispatch;
mod dormant;
mod error;
mod integrity;
mod kill;
mod kill_probe;
mod load;
mod maps;
mod offsets;
mod persist;
mod privileges;
mod programs;
mod protected;
mod quiet;
mod roots;
mod stream;
pub mod tracefs;

use aya::{
    Ebpf,
    maps::{HashMap as BpfHashMap, MapData, lpm_trie::LpmTrie},
    programs::{
        cgroup_sock::CgroupSockLink, cgroup_sock_addr::CgroupSockAddrLink,
        raw_trace_point::RawTracePointLink, trace_point::TracePointLink,
    },
};
use monitor_common::AllowKey;

pub use error::{SensorError, error_chain};
pub use integrity::Integrity;
pub use kill::KillSwitch;
pub use persist::PersistSet;
use programs::{CGROUP_PROGRAMS, CGROUP_SOCK_PROGRAMS, PROGRAMS};
pub use protected::ProtectedSet;
pub use quiet::QuietSlots;
pub use roots::{GuardRoots, identity_of};
pub use stream::{SensorStream, StopSignal, StreamMessage};

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
    /// The system call hooks, when they are attached apart (the guard: dormant.rs).
    syscall_links: Vec<OwnedLink>,
    /// The programs the guard attaches only while a build runs, with their hooks.
    deferred: Vec<(&'static str, Vec<&'static programs::Hook>)>,
    ebpf: Ebpf,
    tracked: BpfHashMap<MapData, u32, u32>,
    crate_procs: BpfHashMap<MapData, u32, u32>,
    allow: LpmTrie<MapData, AllowKey, u8>,
    stream: Option<SensorStream>,
    cgroup: Option<cgroup::BuildCgroup>,
    gaps: Vec<String>,
}
