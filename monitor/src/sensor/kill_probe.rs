//! `--enforce` kills in the kernel with `bpf_send_signal` (Linux 5.3 and later, for tracing
//! programs): probed at start by loading a four-instruction tracepoint program that calls it,
//! as `bpftool feature probe` does, so that a kernel without it refuses `--enforce` with a clear
//! message instead of failing in the verifier or, worse, enforcing nothing.

/// `BPF_FUNC_send_signal` (include/uapi/linux/bpf.h).
const BPF_FUNC_SEND_SIGNAL: i32 = 109;
/// `BPF_PROG_TYPE_TRACEPOINT`.
const BPF_PROG_TYPE_TRACEPOINT: u32 = 5;
/// `BPF_PROG_LOAD`.
const BPF_PROG_LOAD: libc::c_long = 5;

/// One `struct bpf_insn`.
#[repr(C)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

/// Whether this kernel lets a tracepoint program call `bpf_send_signal`; `Err` says why not.
pub fn send_signal_supported() -> Result<(), String> {
    // r1 = 0; call bpf_send_signal; r0 = 0; exit
    let insns = [
        Insn {
            code: 0xb7,
            regs: 0x01,
            off: 0,
            imm: 0,
        },
        Insn {
            code: 0x85,
            regs: 0,
            off: 0,
            imm: BPF_FUNC_SEND_SIGNAL,
        },
        Insn {
            code: 0xb7,
            regs: 0,
            off: 0,
            imm: 0,
        },
        Insn {
            code: 0x95,
            regs: 0,
            off: 0,
            imm: 0,
        },
    ];
    let license = c"GPL";
    // union bpf_attr, BPF_PROG_LOAD part: prog_type, insn_cnt, insns, license at 0, 4, 8, 16;
    // the rest zero (no log).
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&BPF_PROG_TYPE_TRACEPOINT.to_ne_bytes());
    attr[4..8].copy_from_slice(&(insns.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    // SAFETY: bpf(2) with a BPF_PROG_LOAD attribute whose pointers (insns, license) outlive
    // the call; the size given is the buffer's.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            attr.as_mut_ptr(),
            attr.len() as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().to_string());
    }
    // SAFETY: the descriptor was just returned to us and is closed once.
    unsafe { libc::close(fd as i32) };
    Ok(())
}
