//! `dept bench features`: CLIP feature extraction in dept (`dept_models::features`) against transformers'
//! `CLIPImageProcessor` + `CLIPVisionModel` (`bench_features.py`), on the same images and the same weights, the
//! two sides interleaved repeat by repeat so that both see the same machine load. Three parts are timed: the
//! preprocessing alone (decode, resize, crop, normalise), the tower's forward pass on preprocessed batches, and the
//! whole extraction into a safetensors file. A check that both compute the same features follows the table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use clap::{Args, ValueEnum};
use dept_models::clip::{ClipActivation, ClipVision, ClipVisionConfig};
use dept_models::features::{
    list_images, parts_dir, Extractor, FeatureOptions, FeatureStore, ImageFile,
};
use dept_models::image_input::{decode_rgb, ClipImageProcessor, PREPROCESSOR_CONFIG_FILE};
use tch::{Device, Kind, Tensor};

use crate::efficiency::Stats;
use crate::error::{bail, ensure, BenchError, Context, Result};
use crate::python_side::{python, PythonSide};
use crate::scratch::Scratch;

const SCRIPT: &str = include_str!("bench_features.py");

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImageFormat {
    Jpg,
    /// Lossless: dept's preprocessing then gives exactly Pillow's pixel values.
    Png,
}

impl ImageFormat {
    fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpg => "jpg",
            ImageFormat::Png => "png",
        }
    }
}

#[derive(Args)]
pub struct FeaturesBenchArgs {
    /// A Hugging Face CLIP folder (config.json, model.safetensors, preprocessor_config.json). Without it, a CLIP
    /// vision tower of ViT-B/32's shape with random weights (width 768, 12 layers, 12 heads, 32-pixel patches of a
    /// 224-pixel image, quick-GELU).
    #[arg(long)]
    model: Option<PathBuf>,
    /// A folder of PNG/JPEG images (searched recursively). Without it, --count images of varied sizes (640×480,
    /// 480×640, … 1024×768) are generated.
    #[arg(long)]
    images: Option<PathBuf>,
    /// How many images to generate (without --images).
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// The format of generated images.
    #[arg(long, value_enum, default_value_t = ImageFormat::Jpg)]
    format: ImageFormat,
    /// Images per forward pass, on both sides.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// cpu | cuda | cuda:N | auto (the same device on both sides).
    #[arg(long, default_value = "auto")]
    device: String,
    /// Intra-op threads of torch on both sides (default: libtorch's choice, passed on to PyTorch).
    #[arg(long)]
    threads: Option<i32>,
    /// Timed repeats over all images (medians are printed).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Untimed repeats first.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// The python with torch 2.11, transformers and Pillow (default: DEPT_BENCH_PYTHON, else the venv that
    /// `cargo xtask bench-venv` makes).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Fail unless, on the same pixel values, dept's tower and transformers' eager `CLIPVisionModel` agree within this
    /// relative difference (a check for CI; timings are not checked).
    #[arg(long)]
    check: Option<f64>,
}

/// How many parts are timed: the rows of the table, in this order on both sides.
const PARTS: usize = 5;

/// The table's row names, in the order [`DeptSide::time_parts`] and [`PyTorch::time_parts`] return their times.
fn part_names(workers: usize) -> [String; PARTS] {
    [
        format!("(a) preprocessing: decode, resize, crop, normalise (dept on {workers} threads, PyTorch 1 process)"),
        "(a) preprocessing, both on 1 thread".to_string(),
        "(b) tower forward (PyTorch: eager attention)".to_string(),
        "(b) tower forward (PyTorch: sdpa attention, its default)".to_string(),
        "(c) whole extraction into a safetensors file (PyTorch: sdpa)".to_string(),
    ]
}

/// Prepares both sides, measures them interleaved, then prints the table and the agreement check.
pub fn run(args: &FeaturesBenchArgs) -> Result<()> {
    // Declared first, so dropped last: the scratch folder outlives everything that reads from it, on an error too.
    let setup = Setup::prepare(args)?;
    let inputs = Inputs::prepare(args, &setup)?;
    let dept = DeptSide::load(args, &setup, &inputs)?;
    let mut pytorch = PyTorch::start_on(&setup, &inputs.model_dir, &dept.batches)?;
    let theirs_out = setup.scratch.join("transformers.safetensors");
    let times = measure(args, &dept, &mut pytorch, &theirs_out)?;
    // The agreement check's inputs are sent before the PyTorch side quits; its answer is read after the table.
    let check_out = pytorch.check(&setup.scratch, &dept.pixels[0])?;
    let versions = pytorch.quit();
    print_header(args, &setup, &inputs, &dept, &versions);
    print_table(inputs.images.len(), dept.workers, &times);
    print_agreement(args, &dept, &check_out, &theirs_out)
}

/// What the run stands on, settled before any image or model is made: the arguments checked, the device and the
/// threads both sides use, the python and its script in a scratch folder.
struct Setup {
    device: Device,
    /// The same device in PyTorch's spelling.
    python_device: String,
    python: PathBuf,
    /// Intra-op threads of torch, the same on both sides.
    threads: i32,
    scratch: Scratch,
    script: PathBuf,
}

impl Setup {
    fn prepare(args: &FeaturesBenchArgs) -> Result<Self> {
        ensure!(
            args.batch_size > 0 && args.repeats > 0 && args.count > 0,
            "--batch-size, --repeats and --count must be positive"
        );
        if cfg!(debug_assertions) {
            tracing::warn!(
                "this dept is a debug build: its image decoding and resizing (Rust code, unoptimised) run many \
                 times slower than in a release build, so (a) and (c) say nothing; build with `cargo build --release`"
            );
        }
        if let Some(threads) = args.threads {
            ensure!(threads > 0, "--threads must be positive");
            tch::set_num_threads(threads);
        }
        let device = dept_train::device::resolve_device(&args.device)?;
        let python_device = match device {
            Device::Cpu => "cpu".to_string(),
            Device::Cuda(i) => format!("cuda:{i}"),
            other => bail!("device {other:?}: the benchmark runs on cpu or cuda"),
        };
        check_folders(args)?;
        let python = python(args.python.as_deref())?;
        let threads = tch::get_num_threads();
        let scratch = Scratch::create("bench-features")?;
        let script = scratch.join("bench_features.py");
        std::fs::write(&script, SCRIPT).map_err(|e| BenchError::io("writing", &script, e))?;
        Ok(Setup {
            device,
            python_device,
            python,
            threads,
            scratch,
            script,
        })
    }
}

/// A given --model or --images must be a folder: said before the python is even looked for.
fn check_folders(args: &FeaturesBenchArgs) -> Result<()> {
    if let Some(dir) = &args.model {
        ensure!(
            dir.is_dir(),
            "{}: no such folder (--model takes a Hugging Face CLIP folder: config.json, model.safetensors, \
             preprocessor_config.json)",
            dir.display()
        );
    }
    if let Some(dir) = &args.images {
        ensure!(
            dir.is_dir(),
            "{}: no such folder (--images takes a folder of .jpg/.png images)",
            dir.display()
        );
    }
    Ok(())
}

/// The images and the CLIP folder both sides read, given or made in the scratch folder, with the names the report
/// gives them.
struct Inputs {
    images: Vec<ImageFile>,
    images_label: String,
    model_dir: PathBuf,
    model_label: String,
}

impl Inputs {
    fn prepare(args: &FeaturesBenchArgs, setup: &Setup) -> Result<Self> {
        let (image_dir, images_label) = match &args.images {
            Some(dir) => (dir.clone(), dir.display().to_string()),
            None => {
                let dir = setup.scratch.join("images");
                make_images(&setup.python, &setup.script, &dir, args.count, args.format)?;
                (
                    dir,
                    format!("generated {}", args.format.name().to_uppercase()),
                )
            }
        };
        let images = list_images(&image_dir)?;
        ensure!(
            !images.is_empty(),
            "{}: no .jpg, .jpeg or .png files",
            image_dir.display()
        );
        let (model_dir, model_label) = match &args.model {
            Some(dir) => (dir.clone(), dir.display().to_string()),
            None => {
                let dir = setup.scratch.join("clip-vit-b32-random");
                write_random_vit_b32(&dir)?;
                (dir, "ViT-B/32 shape, random weights".to_string())
            }
        };
        Ok(Inputs {
            images,
            images_label,
            model_dir,
            model_label,
        })
    }
}

/// dept's side: the extractor (which holds the tower) and the processor, with what is prepared untimed before the
/// first repeat.
struct DeptSide<'a> {
    extractor: Extractor,
    processor: ClipImageProcessor,
    device: Device,
    images: &'a [ImageFile],
    batches: Vec<&'a [ImageFile]>,
    /// dept's pixel values of each batch, for the forward-only part (and batch 0 for the agreement check).
    pixels: Vec<Tensor>,
    /// The threads the preprocessing runs on, as `Extractor::run` runs it.
    workers: usize,
    /// The tower's parameter count, for the header.
    parameters: i64,
    /// The images' sizes, as the report's header says them.
    image_sizes: String,
    /// Where (c) writes dept's feature file.
    out: PathBuf,
}

impl<'a> DeptSide<'a> {
    fn load(args: &FeaturesBenchArgs, setup: &Setup, inputs: &'a Inputs) -> Result<Self> {
        let model_dir = &inputs.model_dir;
        let extractor = Extractor::load(
            model_dir,
            setup.device,
            FeatureOptions::default(),
            args.batch_size,
        )
        .with_context(|| format!("loading the CLIP vision tower of {}", model_dir.display()))?;
        let processor = ClipImageProcessor::from_model_dir(model_dir)?;
        let parameters: i64 = extractor
            .clip()
            .var_store()
            .variables()
            .values()
            .map(Tensor::numel)
            .map(|n| n as i64)
            .sum();
        let workers = rayon_threads();
        let batches: Vec<&[ImageFile]> = inputs.images.chunks(args.batch_size).collect();
        // Untimed: image sizes, and dept's pixel values for the forward-only part.
        let image_sizes = image_sizes(&inputs.images)?;
        let pixels: Vec<Tensor> = batches
            .iter()
            .map(|batch| preprocess(&processor, batch, workers))
            .collect::<Result<_>>()?;
        Ok(DeptSide {
            extractor,
            processor,
            device: setup.device,
            images: &inputs.images,
            batches,
            pixels,
            workers,
            parameters,
            image_sizes,
            out: setup.scratch.join("dept.safetensors"),
        })
    }

    fn clip(&self) -> &ClipVision {
        self.extractor.clip()
    }

    /// One repeat of every part, in [`part_names`] order (milliseconds). dept's tower has one attention, so its
    /// forward time stands against both of PyTorch's.
    fn time_parts(&self) -> Result<[f64; PARTS]> {
        let (device, batches, processor) = (self.device, &self.batches, &self.processor);
        let workers = time_ms(device, || {
            batches
                .iter()
                .try_for_each(|b| preprocess(processor, b, self.workers).map(drop))
        })?;
        let one_thread = time_ms(device, || {
            batches
                .iter()
                .try_for_each(|b| preprocess(processor, b, 1).map(drop))
        })?;
        let forward = time_ms(device, || {
            self.pixels
                .iter()
                .try_for_each(|p| self.clip().forward(p).map(drop).map_err(Into::into))
        })?;
        let full = time_ms(device, || {
            // Each repeat writes the file anew, as a first extraction does.
            let _ = std::fs::remove_file(&self.out);
            let _ = std::fs::remove_dir_all(parts_dir(&self.out));
            self.extractor.run(self.images, &self.out, &mut |_, _| {})?;
            Ok(())
        })?;
        Ok([workers, one_thread, forward, forward, full])
    }
}

/// Each part's times over the timed repeats, one list per part in [`part_names`] order, for each side.
struct Times {
    ours: Vec<Vec<f64>>,
    theirs: Vec<Vec<f64>>,
}

/// Warm-up then timed repeats, the two sides interleaved repeat by repeat.
fn measure(
    args: &FeaturesBenchArgs,
    dept: &DeptSide,
    pytorch: &mut PyTorch,
    theirs_out: &Path,
) -> Result<Times> {
    let mut times = Times {
        ours: vec![Vec::new(); PARTS],
        theirs: vec![Vec::new(); PARTS],
    };
    let record = |list: &mut Vec<Vec<f64>>, ms: [f64; PARTS]| {
        for (part, v) in list.iter_mut().zip(ms) {
            part.push(v);
        }
    };
    for repeat in 0..args.warmup + args.repeats {
        let timed = repeat >= args.warmup;
        // The side that goes first alternates, so that neither always runs on a machine the other just warmed.
        for side in 0..2 {
            if (side + repeat) % 2 == 0 {
                let ms = dept.time_parts()?;
                if timed {
                    record(&mut times.ours, ms);
                }
            } else {
                let ms = pytorch.time_parts(theirs_out)?;
                if timed {
                    record(&mut times.theirs, ms);
                }
            }
        }
    }
    Ok(times)
}

/// What was measured, on what, with which versions.
fn print_header(
    args: &FeaturesBenchArgs,
    setup: &Setup,
    inputs: &Inputs,
    dept: &DeptSide,
    versions: &Versions,
) {
    let config = dept.clip().config();
    println!(
        "dept bench features: {} images ({}, {}), CLIP {} ({:.1}M parameters, {} layers, width {}, {} tokens per \
         image), batch {}, {}, {} torch threads on both sides; PyTorch {}, transformers {}; medians of {} repeats \
         over all images after {} warm-up, the two sides interleaved",
        inputs.images.len(),
        inputs.images_label,
        dept.image_sizes,
        inputs.model_label,
        dept.parameters as f64 / 1e6,
        config.num_hidden_layers,
        config.hidden_size,
        config.num_patches() + 1,
        args.batch_size,
        setup.python_device,
        setup.threads,
        versions.torch,
        versions.transformers,
        args.repeats,
        args.warmup
    );
}

/// The table of both sides' medians (throughput over all `images`), and what each side's parts consist of.
fn print_table(images: usize, workers: usize, times: &Times) {
    let n = images as f64;
    println!();
    println!("| part | dept: images/s (median ms, range) | PyTorch: images/s (median ms, range) | dept ÷ PyTorch (time) |");
    println!("|---|---|---|---|");
    for (i, name) in part_names(workers).iter().enumerate() {
        let (o, t) = (
            Stats::of(times.ours[i].clone()),
            Stats::of(times.theirs[i].clone()),
        );
        println!(
            "| {name} | {:.1} img/s ({:.0} ms, {:.0}–{:.0}) | {:.1} img/s ({:.0} ms, {:.0}–{:.0}) | {:.2} |",
            n / o.median * 1e3,
            o.median,
            o.min,
            o.max,
            n / t.median * 1e3,
            t.median,
            t.min,
            t.max,
            o.median / t.median
        );
    }
    println!();
    println!(
        "dept: (a) `ClipImageProcessor::preprocess` on {workers} threads (as `Extractor::run` does it: one image per \
         core), (b) `ClipVision::forward`, (c) `Extractor::run` (parts, merge, atomic write). PyTorch: (a) Pillow's \
         `Image.open` + `CLIPImageProcessor` (single-process: transformers' image processors do not parallelise), \
         (b) `CLIPVisionModel` under `torch.no_grad()`, (c) both + `safetensors.torch.save_file` of the last hidden \
         state without the class token."
    );
}

/// The tensors the PyTorch side wrote for the agreement check: its towers' states on dept's pixel values of batch
/// 0 (`eager_on_ours`, `sdpa_on_ours`), its own pixel values of batch 0 and the processor's `image_std`.
struct CheckFile(BTreeMap<String, Tensor>);

impl CheckFile {
    fn read(path: &Path) -> Result<Self> {
        Ok(CheckFile(
            Tensor::read_safetensors(path)?.into_iter().collect(),
        ))
    }

    fn get(&self, name: &str) -> Result<&Tensor> {
        self.0.get(name).ok_or_else(|| {
            BenchError::Python(format!("the PyTorch side's check file lacks `{name}`"))
        })
    }
}

/// Agreement: the towers on the same pixel values (the --check), the two preprocessings, and the two feature files.
fn print_agreement(
    args: &FeaturesBenchArgs,
    dept: &DeptSide,
    check_out: &Path,
    theirs_out: &Path,
) -> Result<()> {
    let returned = CheckFile::read(check_out)?;
    let ours_state = dept
        .clip()
        .forward(&dept.pixels[0])?
        .last_hidden_state
        .to_device(Device::Cpu);
    let eager = relative(&ours_state, returned.get("eager_on_ours")?);
    println!(
        "agreement on the same pixel values (dept's, batch 0: {} images fed to both towers): last_hidden_state max \
         |dept − transformers| / max |transformers| = {} (eager), {} (sdpa)",
        dept.batches[0].len(),
        show(eager),
        show(relative(&ours_state, returned.get("sdpa_on_ours")?))
    );
    if let Some(tolerance) = args.check {
        ensure!(
            eager <= tolerance,
            "--check {tolerance}: dept's tower and transformers' differ by {eager:e} on the same pixel values"
        );
    }
    print_pixel_agreement(dept, &returned)?;
    print_feature_agreement(dept, theirs_out)
}

/// dept's pixel values of batch 0 against CLIPImageProcessor's, in levels of 255.
fn print_pixel_agreement(dept: &DeptSide, returned: &CheckFile) -> Result<()> {
    let image_std = returned.get("image_std")?.view([1, 3, 1, 1]);
    let levels: Tensor = (&dept.pixels[0] - returned.get("pixels")?).abs() * image_std * 255.0;
    println!(
        "pixel values, dept's preprocessing vs CLIPImageProcessor's (batch 0): max difference {:.2} levels of 255, \
         mean {:.3}{}",
        levels.max().double_value(&[]),
        levels.mean(Kind::Float).double_value(&[]),
        if dept.batches[0].iter().any(|i| !is_png(&i.path)) {
            " (JPEG: the decoders differ, by up to 18 levels at sharp chroma edges; PNG decodes identically)"
        } else {
            ""
        }
    );
    Ok(())
}

/// The two feature files of (c), each side with its own preprocessing: the largest difference over all images,
/// relative to the largest value.
fn print_feature_agreement(dept: &DeptSide, theirs_out: &Path) -> Result<()> {
    let store = FeatureStore::open(&dept.out)?;
    let theirs_features: BTreeMap<String, Tensor> =
        Tensor::read_safetensors(theirs_out)?.into_iter().collect();
    let (mut worst, mut scale) = (0f64, 0f64);
    for image in dept.images {
        let a = store.get(&image.id)?;
        let b = theirs_features.get(&image.id).ok_or_else(|| {
            BenchError::Python(format!("transformers' feature file lacks `{}`", image.id))
        })?;
        worst = worst.max((&a - b).abs().max().double_value(&[]));
        scale = scale.max(b.abs().max().double_value(&[]));
    }
    println!(
        "feature files of (c), each side with its own preprocessing, all {} images, [{} tokens, {}] each: max \
         |dept − transformers| / max |transformers| = {}",
        dept.images.len(),
        store.tokens(),
        store.width(),
        show(worst / scale)
    );
    Ok(())
}

/// The threads `Extractor::run` decodes images on: rayon's global pool (RAYON_NUM_THREADS, else one per core).
fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A batch's pixel values `[n, 3, H, W]`, the images preprocessed on `workers` threads, each taking the next image
/// (as `Extractor::run` does with rayon).
fn preprocess(
    processor: &ClipImageProcessor,
    batch: &[ImageFile],
    workers: usize,
) -> Result<Tensor> {
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(image) = batch.get(i) else {
                return done;
            };
            done.push((i, processor.preprocess(&image.path)));
        }
    };
    let mut results: Vec<(usize, Result<Tensor, dept_models::ModelError>)> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers.clamp(1, batch.len().max(1)))
                .map(|_| scope.spawn(work))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .map_err(|_| BenchError::Invalid("a preprocessing thread panicked".into()))
                })
                .collect::<Result<Vec<_>>>()
        })?
        .into_iter()
        .flatten()
        .collect();
    results.sort_by_key(|(i, _)| *i);
    let tensors = results
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Tensor::f_stack(&tensors, 0)?)
}

fn time_ms(device: Device, work: impl FnOnce() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    work()?;
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
    Ok(start.elapsed().as_secs_f64() * 1e3)
}

/// A relative difference, `0 (bit-identical)` when it is.
fn show(relative: f64) -> String {
    if relative == 0.0 {
        "0 (bit-identical)".into()
    } else {
        format!("{relative:.1e}")
    }
}

fn is_png(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"))
}

/// max |a − b| / max |b|.
fn relative(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_kind(Kind::Double);
    let b = b.to_kind(Kind::Double);
    (&a - &b).abs().max().double_value(&[]) / b.abs().max().double_value(&[])
}

/// "64 JPEG, 427×640 to 1024×768" style summary of the images' sizes (smallest and largest by area).
fn image_sizes(images: &[ImageFile]) -> Result<String> {
    let mut sizes: Vec<(usize, usize)> = images
        .iter()
        .map(|i| decode_rgb(&i.path).map(|im| (im.width, im.height)))
        .collect::<Result<_, _>>()?;
    sizes.sort_by_key(|&(w, h)| (w * h, w));
    let (first, last) = (sizes[0], sizes[sizes.len() - 1]);
    let distinct = {
        let mut d = sizes.clone();
        d.dedup();
        d.len()
    };
    Ok(if first == last {
        format!("all {}×{}", first.0, first.1)
    } else {
        format!(
            "{distinct} sizes from {}×{} to {}×{}",
            first.0, first.1, last.0, last.1
        )
    })
}

/// A CLIP vision tower of ViT-B/32's shape with transformers' random initialisation, and a preprocessor config
/// resizing the shortest edge to 224 and cropping 224×224 (openai/clip-vit-base-patch32's).
fn write_random_vit_b32(dir: &Path) -> Result<()> {
    let config = ClipVisionConfig {
        hidden_size: 768,
        intermediate_size: 3072,
        num_hidden_layers: 12,
        num_attention_heads: 12,
        num_channels: 3,
        image_size: 224,
        patch_size: 32,
        hidden_act: ClipActivation::QuickGelu,
        layer_norm_eps: 1e-5,
        attention_dropout: 0.0,
        initializer_range: 0.02,
        initializer_factor: 1.0,
    };
    tch::manual_seed(0);
    ClipVision::new_random(&config, Device::Cpu)?.save(dir)?;
    let preprocessor = serde_json::json!({
        "image_processor_type": "CLIPImageProcessor",
        "do_resize": true, "size": {"shortest_edge": 224}, "resample": 3,
        "do_center_crop": true, "crop_size": {"height": 224, "width": 224},
        "do_rescale": true, "rescale_factor": 1.0 / 255.0, "do_normalize": true,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "do_convert_rgb": true,
    });
    let path = dir.join(PREPROCESSOR_CONFIG_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(&preprocessor)?)
        .map_err(|e| BenchError::io("writing", &path, e))?;
    Ok(())
}

/// Generates test images with the bench python (Pillow).
fn make_images(
    python: &Path,
    script: &Path,
    dir: &Path,
    count: usize,
    format: ImageFormat,
) -> Result<()> {
    let output = Command::new(python)
        .arg(script)
        .arg("--make-images")
        .arg(dir)
        .args(["--count", &count.to_string(), "--format", format.name()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| BenchError::io("starting", python, e))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or("").trim();
    if let Some(message) = last.strip_prefix("error ") {
        bail!("{}: {message}", python.display());
    }
    ensure!(
        output.status.success() && last == "ok",
        "{} could not generate the images ({}); its error is above",
        python.display(),
        output.status
    );
    Ok(())
}

/// The versions the PyTorch side runs, for the report's header.
struct Versions {
    torch: String,
    transformers: String,
}

/// The PyTorch process, answering one request per line.
struct PyTorch {
    side: PythonSide,
    versions: Versions,
}

impl PyTorch {
    /// Writes the batches (ids and paths, the same split as dept's) where the script reads them, and starts it.
    fn start_on(setup: &Setup, model: &Path, batches: &[&[ImageFile]]) -> Result<Self> {
        let batch_file = setup.scratch.join("batches.json");
        let listing: Vec<Vec<[String; 2]>> = batches
            .iter()
            .map(|batch| {
                batch
                    .iter()
                    .map(|i| [i.id.clone(), i.path.to_string_lossy().into_owned()])
                    .collect()
            })
            .collect();
        std::fs::write(&batch_file, serde_json::to_string(&listing)?)
            .map_err(|e| BenchError::io("writing", &batch_file, e))?;
        PyTorch::start(
            &setup.python,
            &setup.script,
            model,
            &batch_file,
            setup.threads,
            &setup.python_device,
        )
    }

    fn start(
        python: &Path,
        script: &Path,
        model: &Path,
        batches: &Path,
        threads: i32,
        device: &str,
    ) -> Result<Self> {
        let mut command = Command::new(python);
        command
            .arg(script)
            .arg("--model")
            .arg(model)
            .arg("--batches")
            .arg(batches)
            .args(["--threads", &threads.to_string(), "--device", device]);
        let (side, line) = PythonSide::start(command, python)?;
        match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["ready", torch, transformers, ..] => Ok(PyTorch {
                versions: Versions {
                    torch: (*torch).to_string(),
                    transformers: (*transformers).to_string(),
                },
                side,
            }),
            _ => bail!("the PyTorch side did not start: {line}"),
        }
    }

    /// One repeat of every part, in [`part_names`] order (milliseconds); (c) writes `out`. Its preprocessing runs
    /// in one process, so its one time stands in both (a) rows.
    fn time_parts(&mut self, out: &Path) -> Result<[f64; PARTS]> {
        let process = self.timed(&["process"])?;
        let eager = self.timed(&["forward", "eager"])?;
        let sdpa = self.timed(&["forward", "sdpa"])?;
        let full = self.timed(&["full", "sdpa", &out.to_string_lossy()])?;
        Ok([process, process, eager, sdpa, full])
    }

    /// Asks for the agreement check on dept's `pixels` (written into `scratch` for it); returns the file the
    /// answer is in.
    fn check(&mut self, scratch: &Scratch, pixels: &Tensor) -> Result<PathBuf> {
        let check_in = scratch.join("check-in.safetensors");
        let check_out = scratch.join("check-out.safetensors");
        Tensor::write_safetensors(&[("pixel_values", pixels)], &check_in)?;
        self.request(&[
            "check",
            &check_in.to_string_lossy(),
            &check_out.to_string_lossy(),
        ])?;
        Ok(check_out)
    }

    /// Sends one request (its words); returns the rest of its `ok` answer.
    fn request(&mut self, words: &[&str]) -> Result<String> {
        let request = serde_json::to_string(words)?;
        let line = self.side.ask(&request)?;
        match line.trim().strip_prefix("ok") {
            Some(rest) => Ok(rest.trim().to_string()),
            None => bail!("unexpected answer from the PyTorch side to `{request}`: {line}"),
        }
    }

    /// A timed request: milliseconds.
    fn timed(&mut self, words: &[&str]) -> Result<f64> {
        let answer = self.request(words)?;
        answer.parse().map_err(|_| {
            BenchError::Python(format!(
                "the PyTorch side answered {words:?} with `ok {answer}`"
            ))
        })
    }

    /// Ends the process; what it ran stays for the report.
    fn quit(self) -> Versions {
        self.side.quit("[\"quit\"]");
        self.versions
    }
}
