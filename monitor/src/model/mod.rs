//! The model every stage of the pipeline stands on: what happened ([`Event`] and its kinds,
//! with their closed vocabularies) and path handling shared by decode and the event helpers.
//! The model imports nothing from the stages (sensor, decode, attribution, policy, learn, report,
//! tui); they all import it.
pub mod event;
pub mod path;
pub mod vocab;

pub use event::*;
pub use vocab::*;
