//! buildwatch: watches a Cargo build at run time and tells, crate by crate, what its build scripts
//! and proc-macros did.
//!
//! Data flows one way: [`sensor`] (the only module that touches aya) → [`decode`] →
//! [`attribution`] → sinks ([`summary`], JSON Lines, the live [`tui`]). See docs/architecture.md.
pub mod activity;
pub mod app;
pub mod attribution;
pub mod baseline;
pub mod cli;
pub mod command;
pub mod config;
pub mod coverage;
pub mod decode;
pub mod digest;
pub mod digest_store;
pub mod enforce;
pub mod fetch;
pub mod guard;
pub mod hostile;
pub mod i386;
pub mod images;
pub mod integrity;
pub mod learn;
pub mod metadata;
pub mod model;
pub mod observer;
pub mod packet;
pub mod pipeline;
pub mod policy;
pub mod profile;
pub mod quiet_feed;
pub mod replay;
pub mod report;
pub mod sensor;
pub mod shipped;
pub mod summary;
pub mod toolchain_drift;
pub mod tui;
pub mod user;
pub mod watch;
pub mod watchdog;
