//! The model every stage of the pipeline stands on: what happened ([`Event`] and its kinds,
//! with their closed vocabularies), who answers for it ([`Actor`], [`Role`], [`CrateRef`]), the
//! places of a crate instance ([`Places`]) and the path facts (`paths`: cargo's target layout,
//! toolchain and system locations) attribution and the baseline both rely on.
//! The model imports nothing from the stages (sensor, decode, attribution, policy, learn, report,
//! tui); they all import it.
pub mod actor;
pub mod digest;
pub mod event;
pub mod path;
pub mod paths;
pub mod places;
pub mod project;
pub mod shown;
pub mod vocab;

pub use actor::{Actor, CrateRef, Role};
pub use digest::ImageDigest;
pub use event::*;
pub use places::Places;
pub use shown::{Shown, shown};
pub use vocab::*;
