//! Visual features computed once by a frozen CLIP tower and read back per batch, so that training and evaluation
//! never run the image encoder (VL-Adapter trains from features extracted beforehand the same way).
//!
//! A feature file is one safetensors file: a `[tokens, width]` tensor per image, keyed by the image id (the file
//! name without its extension, e.g. `COCO_val2014_000000391895`, the key VL-T5's data files use), plus
//! `__metadata__` saying how the features were made (model, layer, class token, image size). It is written by
//! [`Extractor::run`] and read by [`FeatureStore`], which reads one image's bytes at a time from the file (no copy of the
//! whole file in memory: COCO's 123k images at 50×768 fp32 are about 19 GB).
//!
//! Extraction is resumable: images are written in parts of a few hundred (`<out>.parts/part-NNNNNN.safetensors`,
//! each written atomically); a rerun skips the images already in a part (or in an existing `<out>`), and the
//! parts are merged into `<out>` (atomically) at the end.
//!
//! What is kept, by default, is VL-Adapter's choice for CLIP ViT features (`VL-T5/src/clip_prepro_feats.py`): the
//! last encoder layer's output without the final layer norm (transformers' `last_hidden_state`), patch tokens
//! only; the class token is kept with `class_token: true`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use dept_core::atomic::write_atomically;
use rayon::prelude::*;
use serde_json::{json, Value};
use tch::{Kind, Tensor};

use crate::clip::ClipVision;
use crate::image_input::ClipImageProcessor;
use crate::ModelError;

/// `__metadata__["format"]` of every feature file this module writes.
pub const FEATURES_FORMAT: &str = "dept-clip-features";
/// Images per part file during extraction.
pub const PART_SIZE: usize = 256;
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png"];

/// How features are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureDtype {
    F32,
    /// Half the size on disk; values are read back as fp32.
    F16,
}

impl FeatureDtype {
    fn kind(self) -> Kind {
        match self {
            FeatureDtype::F32 => Kind::Float,
            FeatureDtype::F16 => Kind::Half,
        }
    }

    fn bytes(self) -> usize {
        match self {
            FeatureDtype::F32 => 4,
            FeatureDtype::F16 => 2,
        }
    }

    /// The safetensors name (`F32`, `F16`).
    pub fn name(self) -> &'static str {
        match self {
            FeatureDtype::F32 => "F32",
            FeatureDtype::F16 => "F16",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        match name {
            "F32" => Some(FeatureDtype::F32),
            "F16" => Some(FeatureDtype::F16),
            _ => None,
        }
    }
}

/// Which states of the tower become an image's features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureOptions {
    /// transformers' `hidden_states` index: 0 is the embeddings after `pre_layrnorm`, `i` the output of layer `i`;
    /// negative counts from the end, so `-1` (the default) is the last layer's output, `last_hidden_state`.
    pub layer: i64,
    /// Keep the class token in front of the patch tokens (VL-Adapter keeps patches only).
    pub class_token: bool,
    pub dtype: FeatureDtype,
}

impl Default for FeatureOptions {
    fn default() -> Self {
        FeatureOptions {
            layer: -1,
            class_token: false,
            dtype: FeatureDtype::F32,
        }
    }
}

impl FeatureOptions {
    /// The file metadata these options (with the model folder and tower) write; a resumed extraction must match
    /// it.
    fn metadata(&self, model: &Path, clip: &ClipVision) -> BTreeMap<String, String> {
        let c = clip.config();
        BTreeMap::from([
            ("format".into(), FEATURES_FORMAT.into()),
            ("model".into(), model.display().to_string()),
            ("layer".into(), self.layer.to_string()),
            ("class_token".into(), self.class_token.to_string()),
            ("image_size".into(), c.image_size.to_string()),
            ("hidden_size".into(), c.hidden_size.to_string()),
            ("dtype".into(), self.dtype.name().into()),
        ])
    }

    /// `[b, 1 + patches, d]` states of the chosen layer → `[b, tokens, d]` features.
    fn select(&self, clip: &ClipVision, hidden_states: &[Tensor]) -> Result<Tensor, ModelError> {
        let n = hidden_states.len() as i64;
        let index = if self.layer < 0 {
            n + self.layer
        } else {
            self.layer
        };
        let layer = usize::try_from(index)
            .ok()
            .and_then(|i| hidden_states.get(i))
            .ok_or_else(|| {
                ModelError::Input(format!(
                    "feature layer {} does not exist: the tower has {} layers, so layer is -{n}..={} (0 = the \
                     embeddings, -1 = the last layer)",
                    self.layer,
                    clip.config().num_hidden_layers,
                    n - 1
                ))
            })?;
        Ok(if self.class_token {
            layer.shallow_clone()
        } else {
            let tokens = layer.size()[1];
            layer.narrow(1, 1, tokens - 1)
        })
    }
}

/// One image to extract: its id (the key in the feature file) and its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    pub id: String,
    pub path: PathBuf,
}

/// The PNG and JPEG files under `dir` (searched recursively, e.g. COCO's `train2014/` and `val2014/`), keyed by
/// file name without extension, sorted by id. Two files with the same id are an error naming both.
pub fn list_images(dir: &Path) -> Result<Vec<ImageFile>, ModelError> {
    if !dir.is_dir() {
        return Err(ModelError::Input(format!(
            "{}: not a folder of images",
            dir.display()
        )));
    }
    let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|source| ModelError::Io {
            path: folder.clone(),
            cause: source,
        })?;
        for entry in entries {
            let path = entry
                .map_err(|source| ModelError::Io {
                    path: folder.clone(),
                    cause: source,
                })?
                .path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let is_image = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
            let Some(id) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if !is_image {
                continue;
            }
            if let Some(other) = found.insert(id.to_string(), path.clone()) {
                return Err(ModelError::Input(format!(
                    "two images have the id `{id}` (the file name without extension): {} and {}",
                    other.display(),
                    path.display()
                )));
            }
        }
    }
    Ok(found
        .into_iter()
        .map(|(id, path)| ImageFile { id, path })
        .collect())
}

/// What [`Extractor::run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractReport {
    /// Images run through the tower now.
    pub extracted: usize,
    /// Images found already done (earlier parts or an existing output file).
    pub reused: usize,
    /// `[tokens, width]` of every image's features.
    pub shape: [i64; 2],
}

/// The frozen tower and its preprocessing, set up to write feature files.
pub struct Extractor {
    model_dir: PathBuf,
    clip: ClipVision,
    processor: ClipImageProcessor,
    pub options: FeatureOptions,
    /// Images per forward pass.
    pub batch_size: usize,
    /// Images per part file ([`PART_SIZE`]): what a killed extraction can lose at most.
    pub part_size: usize,
}

impl Extractor {
    /// Loads the CLIP vision tower of a Hugging Face `CLIPModel` / `CLIPVisionModel` folder and its
    /// `preprocessor_config.json` (transformers' defaults when absent).
    pub fn load(
        model_dir: &Path,
        device: tch::Device,
        options: FeatureOptions,
        batch_size: usize,
    ) -> Result<Self, ModelError> {
        Ok(Extractor {
            model_dir: model_dir.to_path_buf(),
            clip: ClipVision::load(model_dir, device)?,
            processor: ClipImageProcessor::from_model_dir(model_dir)?,
            options,
            batch_size,
            part_size: PART_SIZE,
        })
    }

    pub fn clip(&self) -> &ClipVision {
        &self.clip
    }

    /// Runs the tower over `images` in batches and writes their features to `out` (see the module docs for the
    /// file and for resuming). `progress(done, total)` is called after each batch.
    pub fn run(
        &self,
        images: &[ImageFile],
        out: &Path,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<ExtractReport, ModelError> {
        if images.is_empty() {
            return Err(ModelError::Input(
                "no images to extract features from".into(),
            ));
        }
        let metadata = self.options.metadata(&self.model_dir, &self.clip);
        let parts_dir = parts_dir(out);
        let (mut sources, mut next_part) = open_sources(out, &parts_dir)?;
        for source in &sources {
            check_settings(source, &metadata)?;
        }
        let todo = not_yet_extracted(images, &sources);
        let reused = images.len() - todo.len();
        let total = images.len();
        progress(reused, total);
        let mut shape = sources.first().map(|s| [s.tokens(), s.width()]);
        if !todo.is_empty() {
            create_dir(&parts_dir)?;
        }
        let mut finished = reused;
        for part in todo.chunks(self.part_size.max(1)) {
            let entries = self.extract_part(part, &mut |batch| {
                finished += batch;
                progress(finished, total);
            })?;
            if let Some((_, first)) = entries.first() {
                let s = first.size();
                shape = Some([s[0], s[1]]);
            }
            let path = parts_dir.join(format!("part-{next_part:06}.safetensors"));
            write_file(&path, &metadata, &entries)?;
            next_part += 1;
            sources.push(FeatureStore::open(&path)?);
        }
        merge(out, &metadata, &sources)?;
        remove_parts(&parts_dir)?;
        Ok(ExtractReport {
            extracted: todo.len(),
            reused,
            shape: shape.unwrap_or([0, 0]),
        })
    }

    /// One part's `(image id, [tokens, width] features)`, batch by batch; `on_batch(images)` after each batch.
    fn extract_part(
        &self,
        part: &[&ImageFile],
        on_batch: &mut dyn FnMut(usize),
    ) -> Result<Vec<(String, Tensor)>, ModelError> {
        let mut entries: Vec<(String, Tensor)> = Vec::with_capacity(part.len());
        for batch in part.chunks(self.batch_size.max(1)) {
            let features = self.features_of(batch)?;
            for (row, image) in batch.iter().enumerate() {
                entries.push((image.id.clone(), features.get(row as i64).contiguous()));
            }
            on_batch(batch.len());
        }
        Ok(entries)
    }

    /// `[batch, tokens, width]` features of `batch`, on the CPU in the file's dtype.
    fn features_of(&self, batch: &[&ImageFile]) -> Result<Tensor, ModelError> {
        // Decoding and resizing are CPU work that dominates on a GPU: one image per core (the processor alone is
        // shared with the threads; the tower's tensors cannot be).
        let processor = &self.processor;
        let pixels = batch
            .par_iter()
            .map(|image| processor.preprocess(&image.path))
            .collect::<Result<Vec<Tensor>, ModelError>>()?;
        if let Some(i) = pixels.iter().position(|p| p.size() != pixels[0].size()) {
            return Err(ModelError::Input(format!(
                "{}: preprocessed to {:?}, {} to {:?}; a batch needs one size (set `do_center_crop` in \
                 preprocessor_config.json)",
                batch[i].path.display(),
                pixels[i].size(),
                batch[0].path.display(),
                pixels[0].size()
            )));
        }
        let pixels = Tensor::f_stack(&pixels, 0)?;
        let states = self.clip.forward(&pixels)?;
        Ok(self
            .options
            .select(&self.clip, &states.hidden_states)?
            .to_device(tch::Device::Cpu)
            .to_kind(self.options.dtype.kind()))
    }
}

/// The images of `images` that no earlier output or part holds.
fn not_yet_extracted<'a>(images: &'a [ImageFile], sources: &[FeatureStore]) -> Vec<&'a ImageFile> {
    let done: BTreeSet<&str> = sources.iter().flat_map(|s| s.ids()).collect();
    images
        .iter()
        .filter(|i| !done.contains(i.id.as_str()))
        .collect()
}

fn create_dir(dir: &Path) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
        path: dir.to_path_buf(),
        cause: source,
    })
}

/// Removes the parts of a finished extraction (merged into the output by then).
fn remove_parts(parts_dir: &Path) -> Result<(), ModelError> {
    if !parts_dir.is_dir() {
        return Ok(());
    }
    std::fs::remove_dir_all(parts_dir).map_err(|source| ModelError::Io {
        path: parts_dir.to_path_buf(),
        cause: source,
    })
}

/// What an earlier extraction into `out` left: the output file and the part files, opened, and the number the next
/// part gets.
fn open_sources(out: &Path, parts_dir: &Path) -> Result<(Vec<FeatureStore>, usize), ModelError> {
    let mut sources = Vec::new();
    if out.exists() {
        sources.push(FeatureStore::open(out)?);
    }
    let mut next_part = 0;
    if parts_dir.is_dir() {
        for path in sorted_files(parts_dir)? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Some(number) = name
                .strip_prefix("part-")
                .and_then(|n| n.strip_suffix(".safetensors"))
                .and_then(|n| n.parse::<usize>().ok())
            {
                next_part = next_part.max(number + 1);
                sources.push(FeatureStore::open(&path)?);
            }
        }
    }
    Ok((sources, next_part))
}

/// An earlier file may only be extended with features made the same way (the model folder may have moved).
fn check_settings(
    source: &FeatureStore,
    metadata: &BTreeMap<String, String>,
) -> Result<(), ModelError> {
    let theirs = source.metadata();
    let differing: Vec<String> = metadata
        .iter()
        .filter(|(k, v)| *k != "model" && theirs.get(*k) != Some(*v))
        .map(|(k, v)| {
            let there = theirs.get(k).map_or("unset", String::as_str);
            format!("{k} = {there} there, {v} now")
        })
        .collect();
    if differing.is_empty() {
        return Ok(());
    }
    Err(ModelError::Input(format!(
        "{} was written with other settings ({}); delete it or write to another --out",
        source.path().display(),
        differing.join("; ")
    )))
}

/// `<out>.parts`, where an unfinished extraction keeps its parts.
pub fn parts_dir(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    out.with_file_name(format!("{name}.parts"))
}

fn sorted_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let io = |source| ModelError::Io {
        path: dir.to_path_buf(),
        cause: source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        files.push(entry.map_err(io)?.path());
    }
    files.sort();
    Ok(files)
}

/// Writes `entries` (each a `[tokens, width]` tensor, already in the file's dtype) as one safetensors file,
/// atomically.
fn write_file(
    path: &Path,
    metadata: &BTreeMap<String, String>,
    entries: &[(String, Tensor)],
) -> Result<(), ModelError> {
    let mut sorted: Vec<&(String, Tensor)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let layout: Vec<(&str, String, Vec<i64>, usize)> = sorted
        .iter()
        .map(|(id, t)| {
            let dtype = if t.kind() == Kind::Half { "F16" } else { "F32" };
            let bytes = t.numel() * t.kind().elt_size_in_bytes();
            (id.as_str(), dtype.to_string(), t.size(), bytes)
        })
        .collect();
    stream_file(path, metadata, &layout, |index, sink| {
        let t = &sorted[index].1;
        let mut buffer = vec![0u8; layout[index].3];
        t.copy_data_u8(&mut buffer, t.numel());
        sink.write_all(&buffer)
    })
}

/// The union of `sources` (later sources never repeat an id: extraction skips what is done) as one file at `out`.
fn merge(
    out: &Path,
    metadata: &BTreeMap<String, String>,
    sources: &[FeatureStore],
) -> Result<(), ModelError> {
    if sources.len() == 1 && sources[0].path() == out {
        return Ok(());
    }
    let mut owner: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, source) in sources.iter().enumerate() {
        for id in source.ids() {
            owner.entry(id).or_insert(i);
        }
    }
    let layout: Vec<(&str, String, Vec<i64>, usize)> = owner
        .iter()
        .map(|(id, &i)| {
            let s = &sources[i];
            (
                *id,
                s.dtype.name().to_string(),
                vec![s.tokens, s.width],
                s.entry_bytes(),
            )
        })
        .collect();
    let owners: Vec<usize> = owner.values().copied().collect();
    stream_file(out, metadata, &layout, |index, sink| {
        let bytes = sources[owners[index]].raw(layout[index].0)?;
        sink.write_all(&bytes)
    })
}

/// Writes a safetensors file whose tensors are `layout` (`name, dtype, shape, byte length`, in that order), the
/// bytes of tensor `i` coming from `data(i, sink)`. Header padded with spaces to a multiple of 8, as the
/// safetensors library writes it.
fn stream_file(
    path: &Path,
    metadata: &BTreeMap<String, String>,
    layout: &[(&str, String, Vec<i64>, usize)],
    mut data: impl FnMut(usize, &mut dyn Write) -> std::io::Result<()>,
) -> Result<(), ModelError> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!(metadata));
    let mut offset = 0usize;
    for (name, dtype, shape, bytes) in layout {
        header.insert(
            (*name).to_string(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut text = Value::Object(header).to_string().into_bytes();
    while (8 + text.len()) % 8 != 0 {
        text.push(b' ');
    }
    write_atomically(path, |tmp| {
        let mut sink = BufWriter::new(File::create(tmp)?);
        sink.write_all(&(text.len() as u64).to_le_bytes())?;
        sink.write_all(&text)?;
        for index in 0..layout.len() {
            data(index, &mut sink)?;
        }
        sink.flush()
    })
    .map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        cause: source,
    })
}

/// A feature file opened for reading by image id. Every entry has the same `[tokens, width]` shape and dtype.
pub struct FeatureStore {
    path: PathBuf,
    file: File,
    /// Image id → byte offset of its data in the file.
    offsets: HashMap<String, u64>,
    tokens: i64,
    width: i64,
    dtype: FeatureDtype,
    metadata: BTreeMap<String, String>,
}

impl std::fmt::Debug for FeatureStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureStore")
            .field("path", &self.path)
            .field("images", &self.offsets.len())
            .field("tokens", &self.tokens)
            .field("width", &self.width)
            .finish()
    }
}

impl FeatureStore {
    /// Opens a feature file, checking its header: every entry a `[tokens, width]` F32 or F16 tensor, all of one
    /// shape and dtype, inside the file.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let header = Header::read(path)?;
        let mut metadata = BTreeMap::new();
        let mut offsets = HashMap::new();
        let mut layout: Option<EntryLayout> = None;
        for (name, entry) in &header.entries {
            if name == "__metadata__" {
                metadata = metadata_strings(entry);
                continue;
            }
            let this = EntryLayout::of(path, name, entry)?;
            match layout {
                None => layout = Some(this),
                Some(first) => first.check_same(path, name, this)?,
            }
            offsets.insert(name.clone(), header.data_offset(path, name, entry, this)?);
        }
        let layout =
            layout.ok_or_else(|| not_features(path, "the feature file holds no images".into()))?;
        Ok(FeatureStore {
            path: path.to_path_buf(),
            file: header.file,
            offsets,
            tokens: layout.tokens,
            width: layout.width,
            dtype: layout.dtype,
            metadata,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Visual tokens per image.
    pub fn tokens(&self) -> i64 {
        self.tokens
    }

    /// Width of each visual token (the CLIP tower's hidden size).
    pub fn width(&self) -> i64 {
        self.width
    }

    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    pub fn contains(&self, id: &str) -> bool {
        self.offsets.contains_key(id)
    }

    /// The image ids, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.offsets.keys().map(String::as_str)
    }

    fn entry_bytes(&self) -> usize {
        (self.tokens * self.width) as usize * self.dtype.bytes()
    }

    fn raw(&self, id: &str) -> std::io::Result<Vec<u8>> {
        let offset =
            self.offsets.get(id).copied().ok_or_else(|| {
                std::io::Error::other(format!("{}: no `{id}`", self.path.display()))
            })?;
        let mut buffer = vec![0u8; self.entry_bytes()];
        self.file.read_exact_at(&mut buffer, offset)?;
        Ok(buffer)
    }

    /// One image's features, `[tokens, width]` fp32 on the CPU. A missing id is an error naming it and the file.
    pub fn get(&self, id: &str) -> Result<Tensor, ModelError> {
        if !self.contains(id) {
            return Err(ModelError::Input(format!(
                "{}: no features for image `{id}` ({} images in the file); extract them with `dept features \
                 extract --images <folder holding {id}.jpg> --out {}`",
                self.path.display(),
                self.len(),
                self.path.display()
            )));
        }
        let bytes = self.raw(id).map_err(|source| ModelError::Io {
            path: self.path.clone(),
            cause: source,
        })?;
        Ok(
            Tensor::f_from_data_size(&bytes, &[self.tokens, self.width], self.dtype.kind())?
                .to_kind(Kind::Float),
        )
    }

    /// Several images' features stacked, `[ids.len(), tokens, width]` fp32 on the CPU.
    pub fn batch<S: AsRef<str>>(&self, ids: &[S]) -> Result<Tensor, ModelError> {
        let rows = ids
            .iter()
            .map(|id| self.get(id.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if rows.is_empty() {
            return Err(ModelError::Input(
                "no image ids to read features for".into(),
            ));
        }
        Ok(Tensor::stack(&rows, 0))
    }
}

/// A feature file's error that is about its content (what the header says or where the data lies).
fn not_features(path: &Path, message: String) -> ModelError {
    ModelError::Checkpoint {
        path: path.to_path_buf(),
        message,
    }
}

/// `__metadata__`'s entries as strings (a non-string value reads as empty).
fn metadata_strings(entry: &Value) -> BTreeMap<String, String> {
    entry
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// A safetensors file's header as read from disk, with the open file.
struct Header {
    file: File,
    entries: serde_json::Map<String, Value>,
    /// Where the tensors' bytes begin: after the length and the header.
    data_start: u64,
    file_len: u64,
}

impl Header {
    fn read(path: &Path) -> Result<Self, ModelError> {
        let bad = |message: String| not_features(path, message);
        let io = |source| ModelError::Io {
            path: path.to_path_buf(),
            cause: source,
        };
        let mut file = File::open(path).map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut len_bytes = [0u8; 8];
        file.read_exact(&mut len_bytes)
            .map_err(|_| bad("not a safetensors feature file (shorter than its header)".into()))?;
        let header_len = u64::from_le_bytes(len_bytes);
        if header_len > 100_000_000 || 8 + header_len > file_len {
            return Err(bad(format!(
                "not a safetensors feature file (header length {header_len} in a file of {file_len} bytes)"
            )));
        }
        let mut text = vec![0u8; header_len as usize];
        file.read_exact(&mut text)
            .map_err(|e| bad(format!("cannot read the header: {e}")))?;
        let entries = serde_json::from_slice(&text)
            .map_err(|e| bad(format!("the safetensors header is not a JSON object: {e}")))?;
        Ok(Header {
            file,
            entries,
            data_start: 8 + header_len,
            file_len,
        })
    }

    /// Where in the file the data of entry `name` begins, checked against its layout and the file's length.
    fn data_offset(
        &self,
        path: &Path,
        name: &str,
        entry: &Value,
        layout: EntryLayout,
    ) -> Result<u64, ModelError> {
        let range: Vec<u64> = entry["data_offsets"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        match range[..] {
            [begin, end] if end >= begin && end - begin == layout.bytes() => {
                if self.data_start + end > self.file_len {
                    return Err(not_features(
                        path,
                        format!("`{name}` lies past the end of the file (truncated?)"),
                    ));
                }
                Ok(self.data_start + begin)
            }
            _ => Err(not_features(
                path,
                format!(
                    "`{name}` has data_offsets {} that do not fit its shape",
                    entry["data_offsets"]
                ),
            )),
        }
    }
}

/// One entry's dtype and `[tokens, width]` shape, which every entry of a file shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntryLayout {
    dtype: FeatureDtype,
    tokens: i64,
    width: i64,
}

impl EntryLayout {
    fn of(path: &Path, name: &str, entry: &Value) -> Result<Self, ModelError> {
        let dtype = entry["dtype"]
            .as_str()
            .and_then(FeatureDtype::parse)
            .ok_or_else(|| {
                not_features(
                    path,
                    format!("`{name}` has dtype {}, expected F32 or F16", entry["dtype"]),
                )
            })?;
        let shape: Vec<i64> = entry["shape"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default();
        let [tokens, width] = shape[..] else {
            return Err(not_features(
                path,
                format!(
                    "`{name}` has shape {}, expected [tokens, width]",
                    entry["shape"]
                ),
            ));
        };
        Ok(EntryLayout {
            dtype,
            tokens,
            width,
        })
    }

    /// Entry `name`, of layout `other`, may join a file of this layout only if they are the same.
    fn check_same(self, path: &Path, name: &str, other: EntryLayout) -> Result<(), ModelError> {
        if self == other {
            return Ok(());
        }
        Err(not_features(
            path,
            format!(
                "`{name}` is {} [{}, {}] but other images are {} [{}, {}]: one file holds features of one shape",
                other.dtype.name(),
                other.tokens,
                other.width,
                self.dtype.name(),
                self.tokens,
                self.width
            ),
        ))
    }

    /// Bytes of one entry's data.
    fn bytes(self) -> u64 {
        (self.tokens * self.width) as u64 * self.dtype.bytes() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(n: usize, kind: Kind) -> Vec<(String, Tensor)> {
        (0..n)
            .map(|i| {
                (
                    format!("img{i}"),
                    Tensor::arange(6, (Kind::Float, tch::Device::Cpu))
                        .view([2, 3])
                        .f_add_scalar(i as f64 * 10.0)
                        .unwrap()
                        .to_kind(kind),
                )
            })
            .collect()
    }

    #[test]
    fn written_files_read_back_by_key_and_with_libtorch() {
        let dir = tempfile::tempdir().unwrap();
        for kind in [Kind::Float, Kind::Half] {
            let path = dir.path().join(format!("{kind:?}.safetensors"));
            let meta = BTreeMap::from([("format".to_string(), FEATURES_FORMAT.to_string())]);
            write_file(&path, &meta, &entries(3, kind)).unwrap();
            let store = FeatureStore::open(&path).unwrap();
            assert_eq!((store.len(), store.tokens(), store.width()), (3, 2, 3));
            assert_eq!(store.metadata()["format"], FEATURES_FORMAT);
            let got = store.get("img2").unwrap();
            assert_eq!(got.kind(), Kind::Float);
            assert_eq!(
                Vec::<f32>::try_from(got.view([-1])).unwrap(),
                [20.0, 21.0, 22.0, 23.0, 24.0, 25.0]
            );
            assert_eq!(store.batch(&["img0", "img1"]).unwrap().size(), [2, 2, 3]);
            // The same file through libtorch's own safetensors reader.
            let all = Tensor::read_safetensors(&path).unwrap();
            assert_eq!(all.len(), 3);
            let missing = store.get("nope").unwrap_err().to_string();
            assert!(
                missing.contains("no features for image `nope`"),
                "{missing}"
            );
            assert!(missing.contains(&*path.to_string_lossy()), "{missing}");
        }
    }

    #[test]
    fn merging_keeps_every_image_once() {
        let dir = tempfile::tempdir().unwrap();
        let meta = BTreeMap::new();
        let all = entries(5, Kind::Float);
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_file(&a, &meta, &all[..3]).unwrap();
        write_file(&b, &meta, &all[3..]).unwrap();
        let out = dir.path().join("out.safetensors");
        let sources = [
            FeatureStore::open(&a).unwrap(),
            FeatureStore::open(&b).unwrap(),
        ];
        merge(&out, &meta, &sources).unwrap();
        let merged = FeatureStore::open(&out).unwrap();
        assert_eq!(merged.len(), 5);
        for (id, t) in &all {
            assert!(merged.get(id).unwrap().equal(t), "{id}");
        }
    }

    #[test]
    fn broken_files_are_refused_with_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.safetensors");
        for content in [&b""[..], b"\x08\0\0\0\0\0\0\0{}      ", b"garbage garbage"] {
            std::fs::write(&path, content).unwrap();
            let e = FeatureStore::open(&path).unwrap_err().to_string();
            assert!(e.contains(&*path.to_string_lossy()), "{e}");
        }
        // Entries of two shapes.
        let mut mixed = entries(1, Kind::Float);
        mixed.push((
            "wide".into(),
            Tensor::zeros([2, 4], (Kind::Float, tch::Device::Cpu)),
        ));
        write_file(&path, &BTreeMap::new(), &mixed).unwrap();
        let e = FeatureStore::open(&path).unwrap_err().to_string();
        assert!(e.contains("one file holds features of one shape"), "{e}");
        // A truncated file.
        write_file(&path, &BTreeMap::new(), &entries(2, Kind::Float)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        let e = FeatureStore::open(&path).unwrap_err().to_string();
        assert!(e.contains("past the end"), "{e}");
    }
}
