//! The kernel's quiet directories (`QUIET_DIRS_MAP`, monitor-ebpf/src/quiet.rs): userspace
//! fills its slots as the run's places become known (`policy::quiet` says which), in order,
//! and never rewrites one during the run.
use aya::maps::{Array, MapData};
use monitor_common::{QUIET_DIRS, QuietDir};

use super::{Sensor, SensorError, maps::map_failed};

const MAP: &str = "QUIET_DIRS_MAP";

/// The slots of the quiet directories, taken out of the sensor by whoever fills them.
pub struct QuietSlots {
    map: Array<MapData, QuietDir>,
    filled: Vec<String>,
}

impl Sensor {
    /// The quiet directories' slots (once: the map moves out of the sensor). Runs that record
    /// `--events` do not take them, so that their stream has every failed open.
    pub fn quiet_slots(&mut self) -> Result<QuietSlots, SensorError> {
        let map = super::load::take_map(&mut self.ebpf, MAP, Array::try_from)?;
        Ok(QuietSlots {
            map,
            filled: Vec::new(),
        })
    }
}

impl QuietSlots {
    /// Gives the kernel the directories of `dirs` it does not have yet, in the free slots;
    /// those that find no slot or do not fit are left out (their failed reads are sent).
    pub fn fill(&mut self, dirs: &[String]) -> Result<(), SensorError> {
        for dir in dirs {
            if self.filled.len() >= QUIET_DIRS as usize || self.filled.contains(dir) {
                continue;
            }
            let Some(slot) = QuietDir::new(dir.as_bytes()) else {
                continue;
            };
            self.map
                .set(self.filled.len() as u32, slot, 0)
                .map_err(map_failed(MAP))?;
            self.filled.push(dir.clone());
        }
        Ok(())
    }

    /// The directories the kernel has, in slot order.
    pub fn filled(&self) -> &[String] {
        &self.filled
    }
}
