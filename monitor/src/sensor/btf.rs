//! Just enough of a BTF reader to find struct member offsets in /sys/kernel/btf/vmlinux.
//!
//! Why not a crate: aya-obj keeps its BTF type accessors crate-private, and the general-purpose
//! parsers on crates.io decode all ~150k types into owned values (~110 ms here, most of the
//! startup budget). This reader indexes the type section in one pass over the bytes and decodes
//! only the structs it is asked about. Format: <https://docs.kernel.org/bpf/btf.html>.
use thiserror::Error;

/// A BTF problem: the file is missing, malformed, or lacks a type/member the sensor needs.
#[derive(Debug, Error)]
pub enum BtfError {
    /// The BTF blob is malformed.
    #[error("malformed BTF: {0}")]
    Malformed(&'static str),
    /// A struct is not in the BTF.
    #[error("struct {0} not found in kernel BTF")]
    NoStruct(String),
    /// A member is not in its struct.
    #[error("member {member} not found in struct {structure}")]
    NoMember {
        /// Struct name.
        structure: String,
        /// Member path.
        member: String,
    },
}

const MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// An indexed BTF blob.
pub struct Btf {
    data: Vec<u8>,
    /// Byte position of each type's `btf_type` header; index = type id - 1.
    types: Vec<usize>,
    strings: usize,
    strings_len: usize,
}

impl Btf {
    /// Reads the running kernel's BTF.
    pub fn from_sys_fs() -> std::io::Result<Result<Self, BtfError>> {
        std::fs::read("/sys/kernel/btf/vmlinux").map(Self::parse)
    }

    /// Indexes a BTF blob (little-endian, as on every architecture buildwatch supports).
    pub fn parse(data: Vec<u8>) -> Result<Self, BtfError> {
        let u32_at = |pos: usize| -> Result<u32, BtfError> {
            data.get(pos..pos + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or(BtfError::Malformed("header out of bounds"))
        };
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err(BtfError::Malformed(
                "bad magic (big-endian BTF is not supported)",
            ));
        }
        let hdr_len = u32_at(4)? as usize;
        let type_off = hdr_len + u32_at(8)? as usize;
        let type_len = u32_at(12)? as usize;
        let strings = hdr_len + u32_at(16)? as usize;
        let strings_len = u32_at(20)? as usize;
        if type_off + type_len > data.len() || strings + strings_len > data.len() {
            return Err(BtfError::Malformed("sections out of bounds"));
        }
        let mut types = Vec::with_capacity(type_len / 16);
        let mut pos = type_off;
        let end = type_off + type_len;
        while pos < end {
            types.push(pos);
            let info = u32_at(pos + 4)?;
            let vlen = (info & 0xffff) as usize;
            let extra = match (info >> 24) & 0x1f {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                _ => 0,
            };
            pos += 12 + extra;
        }
        if pos != end {
            return Err(BtfError::Malformed(
                "type section does not end on a type boundary",
            ));
        }
        Ok(Self {
            data,
            types,
            strings,
            strings_len,
        })
    }

    fn u32_at(&self, pos: usize) -> u32 {
        self.data
            .get(pos..pos + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .unwrap_or(0)
    }

    fn name(&self, off: u32) -> &[u8] {
        let start = self.strings + off as usize;
        let end = self.strings + self.strings_len;
        let bytes = self.data.get(start..end).unwrap_or(&[]);
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        &bytes[..len]
    }

    fn ty(&self, id: u32) -> Option<usize> {
        id.checked_sub(1)
            .and_then(|i| self.types.get(i as usize))
            .copied()
    }

    fn kind(&self, pos: usize) -> u32 {
        (self.u32_at(pos + 4) >> 24) & 0x1f
    }

    /// Follows typedefs and qualifiers to the underlying type.
    fn resolve(&self, mut id: u32) -> Option<usize> {
        for _ in 0..32 {
            let pos = self.ty(id)?;
            match self.kind(pos) {
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = self.u32_at(pos + 8);
                }
                _ => return Some(pos),
            }
        }
        None
    }

    fn struct_by_name(&self, name: &str) -> Option<usize> {
        self.types.iter().copied().find(|&pos| {
            self.kind(pos) == KIND_STRUCT && self.name(self.u32_at(pos)) == name.as_bytes()
        })
    }

    /// Byte offset of `member` in struct `name`, where `member` is a dotted path through nested
    /// structs (`d_name.len`); anonymous structs and unions on the way are searched too.
    pub fn member_offset(&self, name: &str, member: &str) -> Result<u32, BtfError> {
        let pos = self
            .struct_by_name(name)
            .ok_or_else(|| BtfError::NoStruct(name.to_owned()))?;
        let mut pos = pos;
        let mut total = 0u32;
        for part in member.split('.') {
            let (off, ty) = self
                .find_member(pos, part, 0)
                .ok_or_else(|| BtfError::NoMember {
                    structure: name.to_owned(),
                    member: member.to_owned(),
                })?;
            total += off;
            pos = self
                .resolve(ty)
                .ok_or(BtfError::Malformed("dangling type id"))?;
        }
        Ok(total)
    }

    /// Finds `name` among the members of the struct/union at `pos` (recursing into anonymous
    /// members); returns (byte offset, member type id).
    fn find_member(&self, pos: usize, name: &str, depth: u32) -> Option<(u32, u32)> {
        if depth > 8 || !matches!(self.kind(pos), KIND_STRUCT | KIND_UNION) {
            return None;
        }
        let info = self.u32_at(pos + 4);
        let kind_flag = info >> 31 != 0;
        for i in 0..(info & 0xffff) as usize {
            let m = pos + 12 + 12 * i;
            let (m_name, m_type, m_off) = (self.u32_at(m), self.u32_at(m + 4), self.u32_at(m + 8));
            let bit_off = if kind_flag { m_off & 0xff_ffff } else { m_off };
            let byte_off = bit_off / 8;
            if m_name == 0 {
                if let Some(inner) = self.resolve(m_type)
                    && let Some((off, ty)) = self.find_member(inner, name, depth + 1)
                {
                    return Some((byte_off + off, ty));
                }
            } else if self.name(m_name) == name.as_bytes() {
                return Some((byte_off, m_type));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny BTF: int, struct inner { int a; int len; }, struct outer { int x; union { struct
    /// inner in; }; } with `in` at byte 8.
    fn sample() -> Vec<u8> {
        let strings = b"\0int\0a\0len\0inner\0outer\0x\0in\0";
        let s = |name: &str| -> u32 {
            let hay = std::str::from_utf8(strings).expect("ascii");
            hay.find(&format!("\0{name}\0"))
                .map(|i| i as u32 + 1)
                .expect("string")
        };
        let mut types = Vec::new();
        let mut push = |words: &[u32]| {
            for w in words {
                types.extend_from_slice(&w.to_le_bytes());
            }
        };
        // 1: int (4 bytes)
        push(&[s("int"), KIND_INT << 24, 4, 32]);
        // 2: struct inner { a @0, len @32 bits }
        push(&[
            s("inner"),
            (KIND_STRUCT << 24) | 2,
            8,
            s("a"),
            1,
            0,
            s("len"),
            1,
            32,
        ]);
        // 3: anonymous union { struct inner in; }
        push(&[0, (KIND_UNION << 24) | 1, 8, s("in"), 2, 0]);
        // 4: struct outer { int x @0; <anon union> @64 bits }
        push(&[
            s("outer"),
            (KIND_STRUCT << 24) | 2,
            16,
            s("x"),
            1,
            0,
            0,
            3,
            64,
        ]);
        let mut data = Vec::new();
        data.extend_from_slice(&MAGIC.to_le_bytes());
        data.extend_from_slice(&[1, 0]);
        for w in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            data.extend_from_slice(&w.to_le_bytes());
        }
        data.extend_from_slice(&types);
        data.extend_from_slice(strings);
        data
    }

    #[test]
    fn nested_and_anonymous_members() {
        let btf = Btf::parse(sample()).expect("parse");
        assert_eq!(btf.member_offset("inner", "len").expect("len"), 4);
        assert_eq!(btf.member_offset("outer", "x").expect("x"), 0);
        assert_eq!(btf.member_offset("outer", "in.len").expect("in.len"), 12);
        assert!(matches!(
            btf.member_offset("outer", "nope"),
            Err(BtfError::NoMember { .. })
        ));
        assert!(matches!(
            btf.member_offset("missing", "x"),
            Err(BtfError::NoStruct(_))
        ));
    }

    #[test]
    fn rejects_garbage() {
        assert!(Btf::parse(vec![0; 64]).is_err());
        let mut bad = sample();
        bad.truncate(40);
        assert!(Btf::parse(bad).is_err());
    }

    #[test]
    fn running_kernel_if_available() {
        // The real kernel's BTF must give the offsets the sensor relies on.
        let Ok(Ok(btf)) = Btf::from_sys_fs() else {
            eprintln!("skipped: /sys/kernel/btf/vmlinux not readable");
            return;
        };
        let tgid = btf
            .member_offset("task_struct", "tgid")
            .expect("task_struct.tgid");
        let pid = btf
            .member_offset("task_struct", "pid")
            .expect("task_struct.pid");
        assert_eq!(tgid, pid + 4, "pid and tgid are adjacent in task_struct");
        btf.member_offset("dentry", "d_name.len")
            .expect("dentry.d_name.len");
        btf.member_offset("mm_struct", "arg_start")
            .expect("mm_struct.arg_start");
    }
}
