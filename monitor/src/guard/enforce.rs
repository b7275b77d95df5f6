//! `buildwatch guard --enforce`: every guarded build enforced as `buildwatch ci --enforce`
//! enforces one, with the kernel side shared. The kernel holds each new build script at exec
//! and kills crate code for what fails `ci` by default and no hook can refuse (kill mode); the
//! socket hooks, attached at the cgroup2 root since guarded builds stay in their users'
//! cgroups, refuse crate code's network unless its crate group is allowed it. Here each build
//! gets its own crate groups, from its workspace's profiles (numbers unique across builds),
//! which are taken back from the kernel when the build ends.
use std::collections::HashMap;

use super::builds::Build;
use crate::{
    enforce::{CrateGroups, FIRST_CRATE_GROUP, Held, KnownFiles},
    model::Event,
    sensor::Sensor,
};

/// The crate groups of every build being watched.
pub struct Enforcement {
    known: KnownFiles,
    next: u32,
    held: Held,
    builds: HashMap<u32, CrateGroups>,
    /// Problems updating the kernel maps (each makes enforcement stricter, never looser).
    pub errors: Vec<String>,
}

impl Enforcement {
    /// Enforcement with the kernel's numbered secrets and persistence targets.
    pub fn new(known: KnownFiles) -> Self {
        Self {
            known,
            next: FIRST_CRATE_GROUP,
            held: Held::default(),
            builds: HashMap::new(),
            errors: Vec::new(),
        }
    }

    /// After `build` attributed `event`: a new build script gets its crate's group and is let
    /// go. A build's first event installs its proc-macro profiles' network allowances for
    /// rustc (a group the kernel shares between builds).
    pub fn event(&mut self, sensor: &mut Sensor, event: &Event, build: &Build) {
        let groups = self.builds.entry(build.root).or_insert_with(|| {
            let mut groups = CrateGroups::new(build.workspace.profiles.clone(), self.known.clone());
            if let Err(e) = groups.install_proc_macros(sensor) {
                self.errors.push(format!(
                    "proc-macro allowances of build {}: {e}",
                    build.root
                ));
            }
            groups
        });
        groups.after(
            sensor,
            &mut self.next,
            &mut self.held,
            event,
            build.pipeline(),
        );
        self.errors.append(&mut groups.errors);
    }

    /// Every turn of the guard's loop: build scripts held without their exec record are let
    /// go (with no allowance).
    pub fn tick(&mut self, sensor: &Sensor) {
        self.held.release(sensor, &mut self.errors);
    }

    /// The guard stops: build scripts still held are let go.
    pub fn stop(&self, sensor: &Sensor) {
        Held::release_all(sensor);
    }

    /// Build `root` ended: what its crate groups were allowed is taken back.
    pub fn ended(&mut self, sensor: &mut Sensor, root: u32) {
        if let Some(mut groups) = self.builds.remove(&root) {
            groups.withdraw(sensor);
        }
    }
}
