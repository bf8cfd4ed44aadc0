//! A restricted reader of the pickle that `torch.save` writes for a state dict: a dict (plain or
//! `collections.OrderedDict`) from names to tensors, each rebuilt by `torch._utils._rebuild_tensor_v2` from a
//! storage named by a persistent id.
//!
//! This is not a general unpickler and runs no code: it knows the handful of opcodes such a file uses, builds plain
//! values from them, and accepts only the globals listed in [`Global::resolve`]. Any other opcode or global is
//! refused with its name and byte position, so a file that tries to call `os.system` (or anything else) is an
//! error, never an action.

use std::collections::HashMap;

use tch::Kind;

/// A storage a tensor views: the archive entry `data/<key>` holding `numel` elements of `kind`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRecord {
    pub key: String,
    pub kind: Kind,
    pub numel: i64,
}

/// One entry of the state dict: a strided view of a storage.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRecord {
    pub storage: StorageRecord,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

/// The globals a tensor state dict needs; nothing else can be named.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    StorageType(Kind),
}

impl Global {
    fn resolve(module: &str, name: &str) -> Option<Global> {
        let storage = |kind| Some(Global::StorageType(kind));
        match (module, name) {
            ("collections", "OrderedDict") => Some(Global::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
            ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
            ("torch", "FloatStorage") => storage(Kind::Float),
            ("torch", "DoubleStorage") => storage(Kind::Double),
            ("torch", "HalfStorage") => storage(Kind::Half),
            ("torch", "BFloat16Storage") => storage(Kind::BFloat16),
            ("torch", "LongStorage") => storage(Kind::Int64),
            ("torch", "IntStorage") => storage(Kind::Int),
            ("torch", "ShortStorage") => storage(Kind::Int16),
            ("torch", "CharStorage") => storage(Kind::Int8),
            ("torch", "ByteStorage") => storage(Kind::Uint8),
            ("torch", "BoolStorage") => storage(Kind::Bool),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(Global),
    Storage(StorageRecord),
    Tensor(TensorRecord),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a str",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a global",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
        }
    }
}

/// Reads the pickle of a tensor state dict: its entries in the file's order. The error names the byte position
/// and what was found there.
pub fn read_state_dict(bytes: &[u8]) -> Result<Vec<(String, TensorRecord)>, String> {
    let mut machine = Machine {
        bytes,
        at: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    let top = machine.run()?;
    let Value::Dict(items) = top else {
        return Err(format!(
            "the pickle holds {}, not a state dict (a dict of tensors)",
            top.kind()
        ));
    };
    items
        .into_iter()
        .map(|(key, value)| match (key, value) {
            (Value::Str(name), Value::Tensor(tensor)) => Ok((name, tensor)),
            (Value::Str(name), other) => Err(format!(
                "state dict entry `{name}` is {}, not a tensor",
                other.kind()
            )),
            (other, _) => Err(format!("a state dict key is {}, not a str", other.kind())),
        })
        .collect()
}

struct Machine<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    /// Stack lengths at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl Machine<'_> {
    fn run(&mut self) -> Result<Value, String> {
        loop {
            let position = self.at;
            let opcode = self.take(1)?[0];
            self.step(opcode)
                .map_err(|e| format!("pickle byte {position} (opcode 0x{opcode:02x}): {e}"))?;
            if opcode == b'.' {
                return self.pop();
            }
        }
    }

    fn step(&mut self, opcode: u8) -> Result<(), String> {
        match opcode {
            // PROTO: protocols 2 to 5 share every opcode read here.
            0x80 => {
                let protocol = self.take(1)?[0];
                if !(2..=5).contains(&protocol) {
                    return Err(format!("pickle protocol {protocol}; expected 2 to 5"));
                }
            }
            // FRAME: a length prefix for buffering; the content follows inline.
            0x95 => {
                self.take(8)?;
            }
            b'.' => {}
            b'}' => self.stack.push(Value::Dict(Vec::new())),
            b']' => self.stack.push(Value::List(Vec::new())),
            b')' => self.stack.push(Value::Tuple(Vec::new())),
            b'N' => self.stack.push(Value::None),
            0x88 => self.stack.push(Value::Bool(true)),
            0x89 => self.stack.push(Value::Bool(false)),
            b'(' => self.marks.push(self.stack.len()),
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (opcode - 0x84) as usize;
                if self.stack.len() < n {
                    return Err("the stack is too short for a tuple".into());
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.stack.push(Value::Tuple(items));
            }
            b'K' => {
                let v = self.take(1)?[0];
                self.stack.push(Value::Int(v as i64));
            }
            b'M' => {
                let v = u16::from_le_bytes([self.take(1)?[0], self.take(1)?[0]]);
                self.stack.push(Value::Int(v as i64));
            }
            b'J' => {
                let mut raw = [0u8; 4];
                raw.copy_from_slice(self.take(4)?);
                self.stack.push(Value::Int(i32::from_le_bytes(raw) as i64));
            }
            // LONG1: n little-endian two's-complement bytes.
            0x8a => {
                let n = self.take(1)?[0] as usize;
                if n > 8 {
                    return Err(format!(
                        "an integer of {n} bytes is larger than any tensor size"
                    ));
                }
                let bytes = self.take(n)?;
                let mut value: i64 = 0;
                for (i, byte) in bytes.iter().enumerate() {
                    value |= (*byte as i64) << (8 * i);
                }
                if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                    value -= 1i64 << (8 * n);
                }
                self.stack.push(Value::Int(value));
            }
            b'G' => {
                let v = self.take(8)?;
                let mut raw = [0u8; 8];
                raw.copy_from_slice(v);
                self.stack.push(Value::Float(f64::from_be_bytes(raw)));
            }
            b'X' => {
                let n = self.length(4)?;
                let text = self.text(n)?;
                self.stack.push(Value::Str(text));
            }
            0x8c => {
                let n = self.length(1)?;
                let text = self.text(n)?;
                self.stack.push(Value::Str(text));
            }
            0x8d => {
                let n = self.length(8)?;
                let text = self.text(n)?;
                self.stack.push(Value::Str(text));
            }
            b'q' => {
                let key = self.take(1)?[0] as u32;
                self.memoize(key)?;
            }
            b'r' => {
                let key = self.length(4)? as u32;
                self.memoize(key)?;
            }
            0x94 => {
                let key = self.memo.len() as u32;
                self.memoize(key)?;
            }
            b'h' => {
                let key = self.take(1)?[0] as u32;
                self.recall(key)?;
            }
            b'j' => {
                let key = self.length(4)? as u32;
                self.recall(key)?;
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.push_global(&module, &name)?;
            }
            0x93 => {
                let name = self.pop_str()?;
                let module = self.pop_str()?;
                self.push_global(&module, &name)?;
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = storage_from_pid(pid)?;
                self.stack.push(Value::Storage(storage));
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let value = reduce(callable, args)?;
                self.stack.push(value);
            }
            // BUILD on a dict: the state is its instance attributes (a state dict's `_metadata` of module versions),
            // which this reader does not need.
            b'b' => {
                let _state = self.pop()?;
                match self.stack.last() {
                    Some(Value::Dict(_)) => {}
                    Some(other) => {
                        return Err(format!(
                            "BUILD on {}; only a dict's attributes are accepted",
                            other.kind()
                        ))
                    }
                    None => return Err("BUILD on an empty stack".into()),
                }
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.dict_top()?.push((key, value));
            }
            b'u' => {
                let items = self.pop_mark()?;
                if items.len() % 2 != 0 {
                    return Err("SETITEMS with an odd number of keys and values".into());
                }
                let mut pairs = Vec::with_capacity(items.len() / 2);
                let mut items = items.into_iter();
                while let (Some(key), Some(value)) = (items.next(), items.next()) {
                    pairs.push((key, value));
                }
                self.dict_top()?.extend(pairs);
            }
            b'a' => {
                let value = self.pop()?;
                self.list_top()?.push(value);
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.list_top()?.extend(items);
            }
            other => {
                return Err(format!(
                "opcode {} is not one a tensor state dict uses; refused (this reader runs no code)",
                opcode_name(other)
            ))
            }
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!(
                "the pickle ends after {} bytes, in the middle of an opcode",
                self.bytes.len()
            ));
        };
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    /// A little-endian length of `width` bytes, checked against what is left of the file.
    fn length(&mut self, width: usize) -> Result<usize, String> {
        let raw = self.take(width)?;
        let mut value: u64 = 0;
        for (i, byte) in raw.iter().enumerate() {
            value |= (*byte as u64) << (8 * i);
        }
        let left = (self.bytes.len() - self.at) as u64;
        Ok(value.min(left.saturating_add(1)) as usize)
    }

    fn text(&mut self, n: usize) -> Result<String, String> {
        let raw = self.take(n)?;
        String::from_utf8(raw.to_vec()).map_err(|_| "a string is not UTF-8".to_string())
    }

    /// A newline-ended ASCII line (GLOBAL's module and name).
    fn line(&mut self) -> Result<String, String> {
        let rest = &self.bytes[self.at..];
        let Some(end) = rest.iter().take(256).position(|&b| b == b'\n') else {
            return Err("GLOBAL without a newline-ended name".into());
        };
        let text = self.text(end)?;
        self.take(1)?;
        Ok(text)
    }

    fn push_global(&mut self, module: &str, name: &str) -> Result<(), String> {
        let global = Global::resolve(module, name).ok_or_else(|| {
            format!(
                "refuses the global `{module}.{name}`: a tensor state dict names only collections.OrderedDict, \
                 torch._utils._rebuild_tensor_v2 / _rebuild_parameter and torch's storage types (nothing is run)"
            )
        })?;
        self.stack.push(Value::Global(global));
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err("pops past the stack's bottom or a MARK".into());
        }
        self.stack
            .pop()
            .ok_or_else(|| "pops an empty stack".to_string())
    }

    fn pop_str(&mut self) -> Result<String, String> {
        match self.pop()? {
            Value::Str(s) => Ok(s),
            other => Err(format!("expected a str, found {}", other.kind())),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| "no MARK to close".to_string())?;
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn memoize(&mut self, key: u32) -> Result<(), String> {
        let top = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| "memoizes an empty stack".to_string())?;
        self.memo.insert(key, top);
        Ok(())
    }

    fn recall(&mut self, key: u32) -> Result<(), String> {
        let value = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| format!("memo entry {key} was never stored"))?;
        self.stack.push(value);
        Ok(())
    }

    fn dict_top(&mut self) -> Result<&mut Vec<(Value, Value)>, String> {
        match self.stack.last_mut() {
            Some(Value::Dict(items)) => Ok(items),
            Some(other) => Err(format!("sets an item on {}, not a dict", other.kind())),
            None => Err("sets an item on an empty stack".into()),
        }
    }

    fn list_top(&mut self) -> Result<&mut Vec<Value>, String> {
        match self.stack.last_mut() {
            Some(Value::List(items)) => Ok(items),
            Some(other) => Err(format!("appends to {}, not a list", other.kind())),
            None => Err("appends to an empty stack".into()),
        }
    }
}

/// `('storage', torch.FloatStorage, '0', 'cpu', 61440)`: the storage type, its archive key, where it lived when
/// saved (ignored: tensors are read to the CPU) and its element count.
fn storage_from_pid(pid: Value) -> Result<StorageRecord, String> {
    let Value::Tuple(fields) = pid else {
        return Err(format!("a persistent id is {}, not a tuple", pid.kind()));
    };
    match fields.as_slice() {
        [Value::Str(tag), Value::Global(Global::StorageType(kind)), Value::Str(key), Value::Str(_location), Value::Int(numel)]
            if tag == "storage" && *numel >= 0 && is_storage_key(key) =>
        {
            Ok(StorageRecord {
                key: key.clone(),
                kind: *kind,
                numel: *numel,
            })
        }
        _ => Err(
            "a persistent id is not ('storage', <torch storage type>, <key>, <location>, <numel>)"
                .into(),
        ),
    }
}

/// Storage keys are archive entry names under `data/`: torch writes decimal numbers; nothing that could name
/// another entry is accepted.
fn is_storage_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 32
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn reduce(callable: Value, args: Value) -> Result<Value, String> {
    let Value::Global(global) = callable else {
        return Err(format!(
            "REDUCE calls {}, not an accepted global",
            callable.kind()
        ));
    };
    let Value::Tuple(args) = args else {
        return Err(format!(
            "REDUCE's arguments are {}, not a tuple",
            args.kind()
        ));
    };
    match global {
        Global::OrderedDict if args.is_empty() => Ok(Value::Dict(Vec::new())),
        Global::OrderedDict => Err("collections.OrderedDict called with arguments".into()),
        Global::RebuildTensorV2 => rebuild_tensor(args),
        // `_rebuild_parameter(data, requires_grad, backward_hooks)`: a Parameter is its tensor here.
        Global::RebuildParameter => match args.into_iter().next() {
            Some(Value::Tensor(tensor)) => Ok(Value::Tensor(tensor)),
            _ => Err("torch._utils._rebuild_parameter without a tensor".into()),
        },
        Global::StorageType(_) => Err("a storage type is called; torch.save never does".into()),
    }
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`.
fn rebuild_tensor(args: Vec<Value>) -> Result<Value, String> {
    let ints = |value: &Value, what: &str| -> Result<Vec<i64>, String> {
        match value {
            Value::Tuple(items) => items
                .iter()
                .map(|item| match item {
                    Value::Int(v) if *v >= 0 => Ok(*v),
                    _ => Err(format!(
                        "a tensor's {what} holds a value that is not an int ≥ 0"
                    )),
                })
                .collect(),
            other => Err(format!(
                "a tensor's {what} is {}, not a tuple",
                other.kind()
            )),
        }
    };
    match args.as_slice() {
        [Value::Storage(storage), Value::Int(offset), size, stride, Value::Bool(_), hooks, rest @ ..]
            if rest.len() <= 1 =>
        {
            if !matches!(hooks, Value::Dict(items) if items.is_empty()) {
                return Err("a tensor with backward hooks; a saved state dict has none".into());
            }
            let (size, stride) = (ints(size, "size")?, ints(stride, "stride")?);
            if size.len() != stride.len() {
                return Err(format!(
                    "a tensor's size {size:?} and stride {stride:?} differ in length"
                ));
            }
            if *offset < 0 {
                return Err(format!("a negative storage offset {offset}"));
            }
            Ok(Value::Tensor(TensorRecord {
                storage: storage.clone(),
                offset: *offset,
                size,
                stride,
            }))
        }
        _ => Err(
            "torch._utils._rebuild_tensor_v2 called with arguments other than (storage, offset, size, stride, \
             requires_grad, hooks)"
                .into(),
        ),
    }
}

fn opcode_name(opcode: u8) -> String {
    let name = match opcode {
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        b'P' => "PERSID",
        b'I' => "INT",
        b'L' => "LONG",
        b'S' => "STRING",
        b'V' => "UNICODE",
        b'F' => "FLOAT",
        b'd' => "DICT",
        b'l' => "LIST",
        b'p' => "PUT",
        b'g' => "GET",
        0x82 => "EXT1",
        0x83 => "EXT2",
        0x84 => "EXT4",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        0x8b => "LONG4",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8e => "BINBYTES8",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        _ => "",
    };
    if name.is_empty() {
        format!("0x{opcode:02x} (unknown)")
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{'w': _rebuild_tensor_v2(('storage', torch.FloatStorage, '0', 'cpu', 6), 0, (2, 3), (3, 1), False,
    /// OrderedDict())}` as torch.save pickles it, without the memo.
    fn one_tensor() -> Vec<u8> {
        let mut p = vec![0x80, 2, b'}', b'('];
        let s = |p: &mut Vec<u8>, text: &str| {
            p.push(b'X');
            p.extend_from_slice(&(text.len() as u32).to_le_bytes());
            p.extend_from_slice(text.as_bytes());
        };
        s(&mut p, "w");
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n(");
        p.push(b'(');
        s(&mut p, "storage");
        p.extend_from_slice(b"ctorch\nFloatStorage\n");
        s(&mut p, "0");
        s(&mut p, "cpu");
        p.extend_from_slice(&[b'K', 6, b't', b'Q', b'K', 0]);
        p.extend_from_slice(&[b'K', 2, b'K', 3, 0x86, b'K', 3, b'K', 1, 0x86, 0x89]);
        p.extend_from_slice(b"ccollections\nOrderedDict\n)R");
        p.extend_from_slice(b"tR");
        p.extend_from_slice(b"u.");
        p
    }

    #[test]
    fn reads_a_state_dict_entry() {
        let entries = read_state_dict(&one_tensor()).unwrap();
        assert_eq!(entries.len(), 1);
        let (name, record) = &entries[0];
        assert_eq!(name, "w");
        assert_eq!(
            record,
            &TensorRecord {
                storage: StorageRecord {
                    key: "0".into(),
                    kind: Kind::Float,
                    numel: 6
                },
                offset: 0,
                size: vec![2, 3],
                stride: vec![3, 1],
            }
        );
    }

    #[test]
    fn refuses_any_other_global_by_name() {
        let mut evil = vec![0x80, 2];
        evil.extend_from_slice(b"cposix\nsystem\nX\x02\x00\x00\x00ls\x85R.");
        let error = read_state_dict(&evil).unwrap_err();
        assert!(error.contains("`posix.system`"), "{error}");
        assert!(error.contains("byte 2"), "{error}");
        // STACK_GLOBAL (protocol 4) is checked the same way.
        let mut evil = vec![0x80, 4, 0x8c, 8];
        evil.extend_from_slice(b"builtins");
        evil.extend_from_slice(&[0x8c, 4]);
        evil.extend_from_slice(b"eval");
        evil.push(0x93);
        let error = read_state_dict(&evil).unwrap_err();
        assert!(error.contains("`builtins.eval`"), "{error}");
    }

    #[test]
    fn refuses_opcodes_a_state_dict_does_not_use() {
        // INST builds an object of a named class: refused by name before the class is even looked at.
        let error = read_state_dict(b"\x80\x02(ios\nsystem\n.").unwrap_err();
        assert!(error.contains("INST"), "{error}");
        let error = read_state_dict(b"\x80\x02}\x81.").unwrap_err();
        assert!(error.contains("NEWOBJ"), "{error}");
    }

    #[test]
    fn a_cut_file_is_an_error_at_every_length() {
        let whole = one_tensor();
        for len in 0..whole.len() {
            assert!(read_state_dict(&whole[..len]).is_err(), "cut at {len}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_dict_of_tensors() {
        let error = read_state_dict(b"\x80\x02K\x05.").unwrap_err();
        assert!(error.contains("not a state dict"), "{error}");
        let error = read_state_dict(b"\x80\x02}X\x01\x00\x00\x00kK\x01s.").unwrap_err();
        assert!(error.contains("`k` is an int, not a tensor"), "{error}");
        // A storage key that could name another archive entry.
        let bad_key = one_tensor()
            .windows(7)
            .position(|w| w == b"X\x01\x00\x00\x000X")
            .map(|at| {
                let mut p = one_tensor();
                p[at + 5] = b'.';
                p
            })
            .unwrap();
        assert!(read_state_dict(&bad_key).is_err());
    }

    #[test]
    fn a_huge_length_prefix_fails_without_allocating() {
        let error = read_state_dict(b"\x80\x02X\xff\xff\xff\xff").unwrap_err();
        assert!(error.contains("ends"), "{error}");
    }
}
