//! The zip archive `torch.save` writes (PyTorch ≥ 1.6): `<name>/data.pkl` (the pickled object, storages named by
//! persistent ids), `<name>/data/<key>` (each storage's raw little-endian bytes), `<name>/version`, and in recent
//! versions `<name>/byteorder`. Read with [`super::unpickle`], written with [`super::pickle`]; entries are stored
//! uncompressed and 64-byte aligned, as torch writes them.

use std::io::{Read, Write};
use std::path::Path;

use tch::{Device, Kind, Tensor};
use zip::write::FileOptions;
use zip::{CompressionMethod, DateTime, ZipArchive, ZipWriter};

use super::{pickle, unpickle};

/// The pickle of a state dict is small (names and shapes); anything larger is not one.
const MAX_PICKLE_BYTES: u64 = 64 << 20;
/// The archive format version torch ≥ 1.6 writes and reads.
const FORMAT_VERSION: &str = "3\n";

/// The named tensors of a `torch.save`d state dict, on the CPU, in the file's order.
pub fn read(path: &Path) -> Result<Vec<(String, Tensor)>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut archive = ZipArchive::new(file).map_err(|e| {
        format!(
            "not a torch.save zip archive ({e}); files written by torch older than 1.6 (or with \
             _use_new_zipfile_serialization=False) are not read: save them again with a recent torch"
        )
    })?;
    let pickles: Vec<String> = archive
        .file_names()
        .filter(|name| name.ends_with("/data.pkl") && name.matches('/').count() == 1)
        .map(str::to_owned)
        .collect();
    let [pickle_name] = pickles.as_slice() else {
        return Err(format!(
            "expected one <archive>/data.pkl entry, found {}",
            pickles.len()
        ));
    };
    let prefix = pickle_name.trim_end_matches("data.pkl").to_string();
    if let Some(order) = entry(&mut archive, &format!("{prefix}byteorder"), 16)? {
        if order.trim_ascii() != b"little" {
            return Err(format!(
                "byteorder is {:?}; only little-endian archives are read",
                String::from_utf8_lossy(&order)
            ));
        }
    }
    let bytes = entry(&mut archive, pickle_name, MAX_PICKLE_BYTES)?
        .ok_or_else(|| format!("{pickle_name} cannot be read"))?;
    let records = unpickle::read_state_dict(&bytes).map_err(|e| format!("{pickle_name}: {e}"))?;
    records
        .into_iter()
        .map(|(name, record)| {
            let tensor = materialise(&mut archive, &prefix, &record)
                .map_err(|e| format!("tensor `{name}`: {e}"))?;
            Ok((name, tensor))
        })
        .collect()
}

/// The bytes of `name`, or `None` when the archive has no such entry; refuses entries larger than `limit`.
fn entry(
    archive: &mut ZipArchive<std::fs::File>,
    name: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, String> {
    let mut file = match archive.by_name(name) {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(format!("{name}: {e}")),
    };
    if file.size() > limit {
        return Err(format!(
            "{name} holds {} bytes, more than the {limit} expected",
            file.size()
        ));
    }
    let mut bytes = Vec::with_capacity(file.size() as usize);
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(Some(bytes))
}

/// The tensor a record describes: its strided view of the storage's bytes, copied into a contiguous tensor.
fn materialise(
    archive: &mut ZipArchive<std::fs::File>,
    prefix: &str,
    record: &unpickle::TensorRecord,
) -> Result<Tensor, String> {
    let storage = &record.storage;
    let element = storage.kind.elt_size_in_bytes() as u64;
    let expected = (storage.numel as u64)
        .checked_mul(element)
        .ok_or_else(|| format!("a storage of {} elements", storage.numel))?;
    let name = format!("{prefix}data/{}", storage.key);
    let bytes = entry(archive, &name, expected)?
        .ok_or_else(|| format!("its storage {name} is not in the archive"))?;
    if bytes.len() as u64 != expected {
        return Err(format!(
            "its storage {name} holds {} bytes; {} elements of {:?} need {expected}",
            bytes.len(),
            storage.numel,
            storage.kind
        ));
    }
    let numel: i64 = record.size.iter().product();
    if numel > 0 {
        let last = record.offset
            + record
                .size
                .iter()
                .zip(&record.stride)
                .map(|(size, stride)| (size - 1) * stride)
                .sum::<i64>();
        if last >= storage.numel {
            return Err(format!(
                "size {:?}, stride {:?} and offset {} reach element {last} of a storage of {}",
                record.size, record.stride, record.offset, storage.numel
            ));
        }
    }
    let flat = Tensor::f_from_data_size(&bytes, &[storage.numel], storage.kind)
        .map_err(|e| e.to_string())?;
    flat.f_as_strided(&record.size, &record.stride, record.offset)
        .and_then(|view| view.f_contiguous())
        .map_err(|e| e.to_string())
}

/// A state dict ready to write: its pickle and each storage's bytes under its key.
pub struct Prepared {
    pickle: Vec<u8>,
    storages: Vec<(String, Vec<u8>)>,
}

/// Lays out `tensors` as `torch.save(dict)` does: one contiguous CPU storage per tensor, keyed `0`, `1`, ….
pub fn prepare(tensors: &[(&str, Tensor)]) -> Result<Prepared, String> {
    let mut records = Vec::with_capacity(tensors.len());
    let mut storages = Vec::with_capacity(tensors.len());
    for (i, (name, tensor)) in tensors.iter().enumerate() {
        let tensor = tensor.to_device(Device::Cpu).contiguous();
        let kind = tensor.kind();
        let numel = tensor.numel();
        let mut bytes = vec![0u8; numel * kind.elt_size_in_bytes()];
        tensor
            .f_copy_data_u8(&mut bytes, numel)
            .map_err(|e| format!("`{name}`: {e}"))?;
        records.push((*name, kind, tensor.size()));
        storages.push((i.to_string(), bytes));
    }
    let entries: Vec<pickle::Entry> = records
        .iter()
        .zip(&storages)
        .map(|((name, kind, size), (key, _))| pickle::Entry {
            name,
            kind: *kind,
            size,
            storage_key: key.clone(),
        })
        .collect();
    Ok(Prepared {
        pickle: pickle::state_dict(&entries)?,
        storages,
    })
}

/// Writes a prepared state dict as a torch archive whose folder is `archive_name` (torch names it after the
/// file). The operating system's errors (a full disk) stay `io::Error`s.
pub fn write<W: Write + std::io::Seek>(
    out: W,
    archive_name: &str,
    state: &Prepared,
) -> std::io::Result<()> {
    let options = FileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(DateTime::default());
    let io = |e: zip::result::ZipError| match e {
        zip::result::ZipError::Io(e) => e,
        other => std::io::Error::other(other),
    };
    let mut zip = ZipWriter::new(out);
    let mut add = |name: String, bytes: &[u8]| -> std::io::Result<()> {
        zip.start_file_aligned(name, options, 64).map_err(io)?;
        zip.write_all(bytes)
    };
    add(format!("{archive_name}/data.pkl"), &state.pickle)?;
    add(format!("{archive_name}/byteorder"), b"little")?;
    for (key, bytes) in &state.storages {
        add(format!("{archive_name}/data/{key}"), bytes)?;
    }
    add(format!("{archive_name}/version"), FORMAT_VERSION.as_bytes())?;
    zip.finish().map_err(io)?;
    Ok(())
}

/// Checks that every element kind read is a float kind an adapter can hold.
pub fn is_float(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    )
}
