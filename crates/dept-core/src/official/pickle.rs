//! Writes the pickle `torch.save` writes for a dict of tensors (protocol 2): each entry rebuilt by
//! `torch._utils._rebuild_tensor_v2` from its own storage, contiguous, on the CPU. `torch.load`, including with
//! `weights_only=True`, reads it; so does [`super::unpickle`].

use tch::Kind;

/// One tensor to write: its name, element kind, shape and the archive key of its storage (`data/<key>`).
pub struct Entry<'a> {
    pub name: &'a str,
    pub kind: Kind,
    pub size: &'a [i64],
    pub storage_key: String,
}

/// The storage type `torch.save` names for an element kind.
pub fn storage_type(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::Float => "FloatStorage",
        Kind::Double => "DoubleStorage",
        Kind::Half => "HalfStorage",
        Kind::BFloat16 => "BFloat16Storage",
        Kind::Int64 => "LongStorage",
        Kind::Int => "IntStorage",
        Kind::Int16 => "ShortStorage",
        Kind::Int8 => "CharStorage",
        Kind::Uint8 => "ByteStorage",
        Kind::Bool => "BoolStorage",
        _ => return None,
    })
}

/// The pickle of `{name: tensor, …}` in the order given. Errors on an element kind torch has no storage type for.
pub fn state_dict(entries: &[Entry]) -> Result<Vec<u8>, String> {
    let mut out = Pickle(vec![0x80, 2]);
    out.op(b'}');
    out.op(b'(');
    for entry in entries {
        let storage = storage_type(entry.kind).ok_or_else(|| {
            format!(
                "`{}`: no torch storage type for {:?}",
                entry.name, entry.kind
            )
        })?;
        let numel: i64 = entry.size.iter().product();
        out.str(entry.name);
        out.global("torch._utils", "_rebuild_tensor_v2");
        out.op(b'(');
        // The persistent id: ('storage', torch.<Kind>Storage, key, 'cpu', numel).
        out.op(b'(');
        out.str("storage");
        out.global("torch", storage);
        out.str(&entry.storage_key);
        out.str("cpu");
        out.int(numel);
        out.op(b't');
        out.op(b'Q');
        out.int(0);
        out.tuple(entry.size);
        out.tuple(&contiguous_strides(entry.size));
        out.op(0x89);
        out.global("collections", "OrderedDict");
        out.op(b')');
        out.op(b'R');
        out.op(b't');
        out.op(b'R');
    }
    out.op(b'u');
    out.op(b'.');
    Ok(out.0)
}

/// Row-major strides of a contiguous tensor of `size`.
pub fn contiguous_strides(size: &[i64]) -> Vec<i64> {
    let mut strides = vec![1; size.len()];
    for i in (0..size.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * size[i + 1].max(1);
    }
    strides
}

struct Pickle(Vec<u8>);

impl Pickle {
    fn op(&mut self, opcode: u8) {
        self.0.push(opcode);
    }

    fn str(&mut self, text: &str) {
        self.0.push(b'X');
        self.0.extend_from_slice(&(text.len() as u32).to_le_bytes());
        self.0.extend_from_slice(text.as_bytes());
    }

    fn global(&mut self, module: &str, name: &str) {
        self.0.push(b'c');
        self.0.extend_from_slice(module.as_bytes());
        self.0.push(b'\n');
        self.0.extend_from_slice(name.as_bytes());
        self.0.push(b'\n');
    }

    /// The shortest integer opcode, as pickle's own writer picks.
    fn int(&mut self, value: i64) {
        if (0..=0xff).contains(&value) {
            self.0.extend_from_slice(&[b'K', value as u8]);
        } else if (0..=0xffff).contains(&value) {
            self.0.push(b'M');
            self.0.extend_from_slice(&(value as u16).to_le_bytes());
        } else if i32::try_from(value).is_ok() {
            self.0.push(b'J');
            self.0.extend_from_slice(&(value as i32).to_le_bytes());
        } else {
            self.0.extend_from_slice(&[0x8a, 8]);
            self.0.extend_from_slice(&value.to_le_bytes());
        }
    }

    fn tuple(&mut self, values: &[i64]) {
        match values.len() {
            0 => self.op(b')'),
            n @ 1..=3 => {
                for v in values {
                    self.int(*v);
                }
                self.op(0x84 + n as u8);
            }
            _ => {
                self.op(b'(');
                for v in values {
                    self.int(*v);
                }
                self.op(b't');
            }
        }
    }
}
