//! The shared libraries an ELF binary asks the loader for (`DT_NEEDED`), read with std alone (xtask has no
//! dependencies): what `readelf -d` prints as `NEEDED`.

use std::path::Path;

const SHT_DYNAMIC: u32 = 6;
const DT_NULL: i64 = 0;
const DT_NEEDED: i64 = 1;

/// `DT_NEEDED` names of a 64-bit little-endian ELF file (Linux x86-64 and aarch64).
pub fn needed_libraries(path: &Path) -> Result<Vec<String>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_needed(&data).map_err(|why| format!("{}: {why}", path.display()))
}

fn parse_needed(data: &[u8]) -> Result<Vec<String>, String> {
    if data.len() < 64 || &data[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if data[4] != 2 || data[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let section_offset = u64_at(data, 0x28)? as usize;
    let section_size = u16_at(data, 0x3A)? as usize;
    let section_count = u16_at(data, 0x3C)? as usize;
    let section = |i: usize| -> Result<(u32, u32, usize, usize), String> {
        let base = i
            .checked_mul(section_size)
            .and_then(|o| o.checked_add(section_offset))
            .ok_or("section table out of bounds")?;
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
            .ok_or("string table out of bounds")?;
        let end = offset
            .checked_add(size)
            .ok_or("dynamic section out of bounds")?;
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
                    .ok_or("library name out of bounds")?;
                needed.push(String::from_utf8_lossy(name).into_owned());
            }
        }
        return Ok(needed);
    }
    Err("no dynamic section (a static binary?)".into())
}

fn bytes<const N: usize>(data: &[u8], at: usize) -> Result<[u8; N], String> {
    at.checked_add(N)
        .and_then(|end| data.get(at..end))
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| format!("truncated ELF file (offset {at})"))
}

fn u16_at(data: &[u8], at: usize) -> Result<u16, String> {
    bytes(data, at).map(u16::from_le_bytes)
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, String> {
    bytes(data, at).map(u32::from_le_bytes)
}

fn u64_at(data: &[u8], at: usize) -> Result<u64, String> {
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
