//! The shared libraries an ELF binary asks the loader for (`DT_NEEDED`), read with std alone (xtask has no
//! dependencies): what `readelf -d` prints as `NEEDED`.

use std::fmt;
use std::path::Path;

use crate::process::Failure;

const SHT_DYNAMIC: u32 = 6;
const DT_NULL: i64 = 0;
const DT_NEEDED: i64 = 1;

/// `DT_NEEDED` names of a 64-bit little-endian ELF file (Linux x86-64 and aarch64).
pub fn needed_libraries(path: &Path) -> Result<Vec<String>, Failure> {
    let data = std::fs::read(path)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))?;
    parse_needed(&data).map_err(|why| Failure::new(format!("{}: {why}", path.display())))
}

/// Why a file's `DT_NEEDED` list cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Malformed {
    NotElf,
    NotElf64LittleEndian,
    /// A table or name (named here) that reaches past the end of the file or of its section.
    OutOfBounds(&'static str),
    /// A field at this offset lies past the end of the file.
    Truncated(usize),
    /// A statically linked binary needs no libraries.
    NoDynamicSection,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::NotElf => f.write_str("not an ELF file"),
            Malformed::NotElf64LittleEndian => f.write_str("not a 64-bit little-endian ELF file"),
            Malformed::OutOfBounds(what) => write!(f, "{what} out of bounds"),
            Malformed::Truncated(offset) => write!(f, "truncated ELF file (offset {offset})"),
            Malformed::NoDynamicSection => f.write_str("no dynamic section (a static binary?)"),
        }
    }
}

fn parse_needed(data: &[u8]) -> Result<Vec<String>, Malformed> {
    if data.len() < 64 || &data[..4] != b"\x7fELF" {
        return Err(Malformed::NotElf);
    }
    if data[4] != 2 || data[5] != 1 {
        return Err(Malformed::NotElf64LittleEndian);
    }
    let section_offset = u64_at(data, 0x28)? as usize;
    let section_size = u16_at(data, 0x3A)? as usize;
    let section_count = u16_at(data, 0x3C)? as usize;
    let section = |i: usize| -> Result<(u32, u32, usize, usize), Malformed> {
        let base = i
            .checked_mul(section_size)
            .and_then(|o| o.checked_add(section_offset))
            .ok_or(Malformed::OutOfBounds("section table"))?;
        Ok((
            u32_at(data, base.saturating_add(4))?,           // sh_type
            u32_at(data, base.saturating_add(40))?,          // sh_link
            u64_at(data, base.saturating_add(24))? as usize, // sh_offset
            u64_at(data, base.saturating_add(32))? as usize, // sh_size
        ))
    };
    for i in 0..section_count {
        let (kind, link, offset, size) = section(i)?;
        if kind != SHT_DYNAMIC {
            continue;
        }
        let (_, _, strings, strings_size) = section(link as usize)?;
        let strings = strings
            .checked_add(strings_size)
            .and_then(|end| data.get(strings..end))
            .ok_or(Malformed::OutOfBounds("string table"))?;
        let end = offset
            .checked_add(size)
            .ok_or(Malformed::OutOfBounds("dynamic section"))?;
        let mut needed = Vec::new();
        for entry in (offset..end).step_by(16) {
            let tag = u64_at(data, entry)? as i64;
            if tag == DT_NULL {
                break;
            }
            if tag == DT_NEEDED {
                let start = u64_at(data, entry.saturating_add(8))? as usize;
                let name = strings
                    .get(start..)
                    .and_then(|s| s.split(|&b| b == 0).next())
                    .ok_or(Malformed::OutOfBounds("library name"))?;
                needed.push(String::from_utf8_lossy(name).into_owned());
            }
        }
        return Ok(needed);
    }
    Err(Malformed::NoDynamicSection)
}

fn bytes<const N: usize>(data: &[u8], at: usize) -> Result<[u8; N], Malformed> {
    at.checked_add(N)
        .and_then(|end| data.get(at..end))
        .and_then(|s| s.try_into().ok())
        .ok_or(Malformed::Truncated(at))
}

fn u16_at(data: &[u8], at: usize) -> Result<u16, Malformed> {
    bytes(data, at).map(u16::from_le_bytes)
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, Malformed> {
    bytes(data, at).map(u32::from_le_bytes)
}

fn u64_at(data: &[u8], at: usize) -> Result<u64, Malformed> {
    bytes(data, at).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_libraries_of_a_real_binary() {
        // The test binary itself is dynamically linked against libc.
        let me = std::env::current_exe().unwrap();
        let needed = needed_libraries(&me).unwrap();
        assert!(
            needed.iter().any(|n| n.starts_with("libc.so")),
            "{needed:?}"
        );
    }

    #[test]
    fn refuses_what_is_not_elf() {
        assert!(parse_needed(b"#!/bin/sh\necho hi\n").is_err());
        let mut truncated = b"\x7fELF\x02\x01".to_vec();
        truncated.resize(64, 0xff);
        assert!(parse_needed(&truncated).is_err());
    }
}
