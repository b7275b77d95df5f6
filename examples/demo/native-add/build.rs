//! Compiles src/add.c into a static library with the system's `cc` and `ar`.
use std::{env, path::PathBuf, process::Command};

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let object = out.join("add.o");
    let status = Command::new(env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-c", "-O2", "-fPIC", "src/add.c", "-o"])
        .arg(&object)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed");
    let status = Command::new("ar").arg("crs").arg(out.join("libadd.a")).arg(&object).status().expect("run ar");
    assert!(status.success(), "ar failed");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=add");
    println!("cargo:rerun-if-changed=src/add.c");
}
