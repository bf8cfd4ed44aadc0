//! File readers. Each turns one on-disk format into raw rows with their line numbers; the task modules map those
//! rows onto the hub schema ([`crate::record::Record`]). Which reader runs is decided by the file name and, for
//! gzip, by the magic bytes.

pub mod csv;
pub mod jsonl;
pub mod lines;
pub mod parquet;
pub mod tsv;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use crate::error::{DataError, Result};

/// The on-disk formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Tab-separated values without quoting (GLUE, PAWS, SciTail `tsv_format`).
    Tsv,
    /// One JSON object per line, optionally gzip-compressed (SuperGLUE, WinoGrande, MRQA, SciTail `snli_format`).
    Jsonl,
    /// Comma-separated values with quoting (Yelp polarity).
    Csv,
    /// Apache Parquet, as the Hugging Face hub serves `datasets`.
    Parquet,
}

/// The format a file name implies (`.gz` is looked through).
pub fn detect_format(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if name.ends_with(".parquet") {
        Some(Format::Parquet)
    } else if name.ends_with(".jsonl") || name.ends_with(".json") {
        Some(Format::Jsonl)
    } else if name.ends_with(".tsv") {
        Some(Format::Tsv)
    } else if name.ends_with(".csv") {
        Some(Format::Csv)
    } else if name.ends_with(".txt") {
        // SciTail's snli_format files are JSON lines named .txt; anything else .txt is tab-separated.
        Some(if name.contains("scitail") && !name.contains("tsv") {
            Format::Jsonl
        } else {
            Format::Tsv
        })
    } else {
        None
    }
}

/// A failed read of `path` (after `line` lines): invalid or truncated data is a decompression failure
/// ([`DataError::Gzip`]), anything else [`DataError::Io`].
pub(crate) fn read_error(path: &Path, line: usize, error: std::io::Error) -> DataError {
    use std::io::ErrorKind::{InvalidData, InvalidInput, UnexpectedEof};
    if matches!(error.kind(), InvalidData | UnexpectedEof | InvalidInput) {
        DataError::Gzip {
            path: path.to_path_buf(),
            line,
            error,
        }
    } else {
        DataError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// Opens a text file, transparently decompressing gzip (detected by its magic bytes, whatever the name).
pub fn open_text(path: &Path) -> Result<Box<dyn BufRead>> {
    let io_err = |error| DataError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut file, &mut magic).map_err(io_err)?;
    let file = File::open(path).map_err(io_err)?;
    if got == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::new(MultiGzDecoder::new(file))))
    } else {
        Ok(Box::new(BufReader::new(file)))
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Reads all lines (without line terminators), mapping a decompression failure to [`DataError::Gzip`] and invalid
/// UTF-8 to a [`DataError::Parse`] naming the line.
pub fn read_lines(path: &Path) -> Result<Vec<String>> {
    let mut reader = open_text(path)?;
    let mut lines = Vec::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => return Err(read_error(path, lines.len(), error)),
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let line = String::from_utf8(std::mem::take(&mut buf)).map_err(|e| DataError::Parse {
            path: path.to_path_buf(),
            line: lines.len() + 1,
            message: format!("not valid UTF-8: {e}"),
        })?;
        lines.push(line);
    }
    Ok(lines)
}
