//! Keeps the kernel's quiet directories ([`QuietSlots`]) up with what the run has learnt of
//! its places: the home and CARGO_HOME come with the first processes, the sysroot and the
//! target directory with the first rustc. Which directories qualify is `policy::quiet`'s call.
use crate::{
    model::Places, observer::Observer, pipeline::Pipeline, policy::quiet::quiet_dirs,
    sensor::QuietSlots,
};

/// Fills the quiet slots as the run's places become known.
pub struct QuietFeed {
    slots: QuietSlots,
    /// The places the slots were last filled from.
    last: Option<Places>,
    /// The command's LD_LIBRARY_PATH.
    library_path: Option<String>,
    /// A slot could not be written: no more tries.
    failed: bool,
}

impl QuietFeed {
    /// `library_path`: the command's LD_LIBRARY_PATH.
    pub fn new(slots: QuietSlots, library_path: Option<String>) -> Self {
        Self {
            slots,
            last: None,
            library_path,
            failed: false,
        }
    }
}

impl Observer for QuietFeed {
    fn tick(&mut self, pipeline: &Pipeline) {
        if self.failed || self.slots.filled().len() >= monitor_common::QUIET_DIRS as usize {
            return;
        }
        let places = pipeline.attributor().places_for(None);
        if self.last.as_ref() == Some(&places) {
            return;
        }
        if let Err(e) = self
            .slots
            .fill(&quiet_dirs(&places, self.library_path.as_deref()))
        {
            // The failed reads go on being sent: nothing is missed (so the run is whole), it
            // only costs more.
            eprintln!(
                "buildwatch: warning: cannot give the kernel its quiet directories ({e}): every \
                 failed open is sent"
            );
            self.failed = true;
        }
        self.last = Some(places);
    }
}
