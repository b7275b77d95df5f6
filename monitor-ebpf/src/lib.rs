//! Empty library target: it lets `monitor` declare this crate as a build-dependency so that cargo
//! rebuilds `monitor` (whose build script builds these programs) when the eBPF sources change.
#![no_std]
