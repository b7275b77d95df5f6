//! Safe wrapper around the C function compiled by build.rs.
unsafe extern "C" {
    fn native_add(a: i32, b: i32) -> i32;
}

/// Adds two numbers, in C.
pub fn add(a: i32, b: i32) -> i32 {
    // SAFETY: native_add is a pure function of two ints.
    unsafe { native_add(a, b) }
}
