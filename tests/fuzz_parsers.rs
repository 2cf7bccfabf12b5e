//! Property-based fuzzing of every parser of outside bytes: IDX (raw and gzipped),
//! MNIST file pairs, CIFAR-10 batches, text corpora, optimizer state files and
//! training checkpoints. Each parser gets generated inputs (random bytes, and well-formed
//! headers with random sizes) and mutations of a valid file (bit flips, truncation,
//! overwritten header fields, huge dimensions, inserted and appended bytes, numbers
//! in the safetensors JSON header replaced by extreme ones). No input may panic,
//! and none may make the parser allocate more than [`MAX_HEAP_GROWTH`] bytes
//! (a counting allocator measures every case): sizes declared by a file must be
//! checked against its length before anything is allocated.
//!
//! The normal suite runs [`QUICK_CASES`] cases per parser and input kind; the
//! ignored tests run [`FULL_CASES`] of each and print cases per second:
//! `cargo test --release --test fuzz_parsers -- --ignored --nocapture --test-threads 1`.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::*;
use coptim::data::cifar::{CIFAR10_RECORD_BYTES, parse_cifar10_batch};
use coptim::data::idx::{encode_idx, parse_idx, parse_idx_images, parse_idx_labels};
use coptim::data::text::{TextCorpus, Vocab};
use coptim::data::{DatasetSplit, parse_mnist_pair};
use coptim::train::{CheckpointFile, ModelSpec, OptimizerKind, Session, TrainConfig};
use coptim::{ElementType, Error, GpuContext, Optimizer, OptimizerConfig, ParamStore, TensorId};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Cases per parser and input kind in the normal suite.
const QUICK_CASES: u32 = 300;
/// Cases per parser and input kind in the ignored full run.
const FULL_CASES: u32 = 100_000;
/// The most one parse may grow the heap: far above any valid input here (the
/// largest decodes to under 1 MB), far below what an unchecked declared size
/// (gigabytes) would take.
const MAX_HEAP_GROWTH: usize = 64 << 20;

/// The system allocator, counting live bytes and their peak.
struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Serializes the tests of this file so that the allocation peak is one parse's.
static SERIAL: Mutex<()> = Mutex::new(());

/// Runs `parse` on `input`, failing the case if the heap grew by more than
/// [`MAX_HEAP_GROWTH`] during it.
fn bounded<T>(input: &[u8], parse: impl FnOnce(&[u8]) -> T) -> Result<T, TestCaseError> {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = parse(input);
    let growth = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    prop_assert!(
        growth <= MAX_HEAP_GROWTH,
        "a {}-byte input made the parser allocate {growth} bytes",
        input.len()
    );
    Ok(out)
}

/// One change to a valid file.
#[derive(Debug, Clone)]
enum Mutation {
    /// Flip one bit (position taken modulo the length).
    BitFlip(usize, u8),
    /// Keep only the first `n` bytes (modulo the length plus one).
    Truncate(usize),
    /// Overwrite the big- or little-endian u32 at an offset in the first 32 bytes
    /// (header fields: magic, dimensions, the safetensors header length).
    HeaderU32(usize, u32, bool),
    /// Insert bytes at a position.
    Insert(usize, Vec<u8>),
    /// Append bytes.
    Append(Vec<u8>),
    /// Replace the `k`-th number in the file's text (the safetensors JSON header:
    /// shapes, offsets, configuration) by an extreme one, keeping the header length
    /// field consistent.
    JsonNumber(usize, &'static str),
}

/// Sizes and values that break unchecked arithmetic.
const EXTREME_U32: [u32; 6] = [0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, u32::MAX];
const EXTREME_NUMBERS: [&str; 8] = [
    "0",
    "1",
    "4294967297",
    "9007199254740993",
    "18446744073709551615",
    "99999999999999999999999",
    "1e308",
    "-1",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::BitFlip(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            0usize..32,
            prop_oneof![prop::sample::select(&EXTREME_U32[..]), any::<u32>()],
            any::<bool>()
        )
            .prop_map(|(o, v, be)| Mutation::HeaderU32(o, v, be)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        prop::collection::vec(any::<u8>(), 1..64).prop_map(Mutation::Append),
        (any::<usize>(), prop::sample::select(&EXTREME_NUMBERS[..]))
            .prop_map(|(k, n)| Mutation::JsonNumber(k, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len().max(1);
    match m {
        Mutation::BitFlip(i, b) => {
            if let Some(x) = bytes.get_mut(i % len) {
                *x ^= 1 << b;
            }
        }
        Mutation::Truncate(n) => bytes.truncate(n % (bytes.len() + 1)),
        Mutation::HeaderU32(o, v, be) => {
            let field = if *be {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            };
            for (k, x) in field.into_iter().enumerate() {
                if let Some(slot) = bytes.get_mut(o + k) {
                    *slot = x;
                }
            }
        }
        Mutation::Insert(i, b) => {
            let at = i % (bytes.len() + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        Mutation::Append(b) => bytes.extend_from_slice(b),
        Mutation::JsonNumber(k, n) => replace_json_number(bytes, *k, n),
    }
}

/// Replaces the `k`-th run of digits (modulo their count) of a safetensors file's
/// JSON header by `number`, fixing the header's length prefix.
fn replace_json_number(bytes: &mut Vec<u8>, k: usize, number: &str) {
    let Some(prefix) = bytes.get(..8) else { return };
    let header_len = u64::from_le_bytes(prefix.try_into().unwrap()) as usize;
    let Some(end) = 8usize.checked_add(header_len).filter(|&e| e <= bytes.len()) else {
        return;
    };
    let mut runs = Vec::new();
    let mut i = 8;
    while i < end {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < end && bytes[i].is_ascii_digit() {
                i += 1;
            }
            runs.push(start..i);
        } else {
            i += 1;
        }
    }
    if runs.is_empty() {
        return;
    }
    let run = runs[k % runs.len()].clone();
    let new_len = header_len - run.len() + number.len();
    bytes.splice(run, number.bytes());
    bytes[..8].copy_from_slice(&(new_len as u64).to_le_bytes());
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A valid file, and whether to gzip it after mutating.
#[derive(Debug, Clone)]
struct Base {
    bytes: Vec<u8>,
    gzip_after: bool,
}

/// Mutations of one of `bases`: 1 to 4 changes, then gzip when the base says so.
fn mutated(bases: Vec<Base>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(bases),
        prop::collection::vec(mutation(), 1..5),
    )
        .prop_map(|(base, ms)| {
            let mut bytes = base.bytes;
            for m in &ms {
                apply(&mut bytes, m);
            }
            if base.gzip_after { gzip(&bytes) } else { bytes }
        })
}

/// Random bytes, and IDX-shaped headers (any magic byte, up to 8 dimensions of
/// extreme or small sizes) followed by a little data, raw or gzipped.
fn generated_idx() -> impl Strategy<Value = Vec<u8>> {
    let dim = prop_oneof![
        0u32..6,
        prop::sample::select(&EXTREME_U32[..]),
        any::<u32>()
    ];
    let header = (
        any::<u8>(),
        prop::collection::vec(dim, 0..9),
        prop::collection::vec(any::<u8>(), 0..256),
        any::<bool>(),
    )
        .prop_map(|(kind, dims, data, gz)| {
            let mut b = vec![0, 0, kind, dims.len() as u8];
            for d in dims {
                b.extend_from_slice(&d.to_be_bytes());
            }
            b.extend_from_slice(&data);
            if gz { gzip(&b) } else { b }
        });
    prop_oneof![prop::collection::vec(any::<u8>(), 0..2048), header]
}

/// Runs `check` on `cases` inputs from `strategy`; returns cases per second.
fn fuzz<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> f64 {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let started = Instant::now();
    if let Err(e) = runner.run(&strategy, check) {
        panic!("{name}: {e}");
    }
    let rate = f64::from(cases) / started.elapsed().as_secs_f64();
    println!("{name}: {cases} cases, {rate:.0} cases/s");
    rate
}

fn idx_bases() -> Vec<Base> {
    let images = encode_idx(&[3, 4, 5], &(0..60).collect::<Vec<u8>>());
    let labels = encode_idx(&[7], &[0, 1, 2, 3, 4, 5, 9]);
    let mut out = Vec::new();
    for bytes in [images, labels] {
        out.push(Base {
            bytes: bytes.clone(),
            gzip_after: false,
        });
        out.push(Base {
            bytes: bytes.clone(),
            gzip_after: true,
        });
        // Mutations of the compressed stream itself.
        out.push(Base {
            bytes: gzip(&bytes),
            gzip_after: false,
        });
    }
    out
}

fn check_idx(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    for parse in [parse_idx, parse_idx_images, parse_idx_labels] {
        if let Ok(a) = bounded(&bytes, |b| parse(b, "fuzz.idx"))? {
            prop_assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
        }
    }
    let (images, labels) = bytes.split_at(bytes.len() / 2);
    if let Ok(ds) = bounded(&bytes, |_| parse_mnist_pair(images, "i", labels, "l"))? {
        prop_assert_eq!(ds.images().len(), ds.len() * ds.image_len());
    }
    Ok(())
}

fn cifar_bases() -> Vec<Base> {
    let mut two = vec![0u8; 2 * CIFAR10_RECORD_BYTES];
    two[0] = 3;
    two[CIFAR10_RECORD_BYTES] = 9;
    vec![
        Base {
            bytes: two.clone(),
            gzip_after: false,
        },
        Base {
            bytes: two.clone(),
            gzip_after: true,
        },
        Base {
            bytes: gzip(&two),
            gzip_after: false,
        },
    ]
}

fn check_cifar(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    if let Ok(ds) = bounded(&bytes, |b| parse_cifar10_batch(b, "fuzz.bin"))? {
        prop_assert_eq!(ds.images().len(), ds.len() * 3 * 32 * 32);
    }
    Ok(())
}

/// Context length of the fuzzed text corpora: short enough that small inputs
/// build a corpus, so that the batching paths run too.
const TEXT_CONTEXT: usize = 3;

fn text_bases() -> Vec<Base> {
    let plays = "HAMLET.\nTo be, or not to be: that is the question.\n".repeat(3);
    let accents = "Où est la café? Ça va. ½ — 日本語 🎭\r\n".repeat(2);
    let mut bom = "\u{feff}".as_bytes().to_vec();
    bom.extend_from_slice(accents.as_bytes());
    [plays.into_bytes(), accents.into_bytes(), bom]
        .into_iter()
        .map(|bytes| Base {
            bytes,
            gzip_after: false,
        })
        .collect()
}

/// How many fuzzed texts made a corpus (and were batched).
static TEXT_CORPORA: AtomicUsize = AtomicUsize::new(0);

/// Parses `bytes` as a corpus with its own vocabulary and with a fixed one; a
/// corpus that parses must batch without panicking and with ids in range.
fn check_text(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let fixed = Vocab::of_texts(&["HAMLET.\nTo be, or not to be: that is the question."]);
    for vocab in [None, Some(&fixed)] {
        let parsed = bounded(&bytes, |b| {
            TextCorpus::parse(b, "fuzz.txt", TEXT_CONTEXT, vocab)
        })?;
        let Ok(corpus) = parsed else { continue };
        TEXT_CORPORA.fetch_add(1, Ordering::Relaxed);
        let size = corpus.vocab().len() as u32;
        prop_assert!(corpus.validation().len() > TEXT_CONTEXT);
        let train = corpus.train_batch(1, 2, 4);
        let validation: Vec<_> = corpus.validation_batches(2).collect();
        prop_assert_eq!(validation.len(), corpus.validation_windows().div_ceil(2));
        for batch in validation.iter().chain([&train]) {
            prop_assert!(batch.inputs.iter().chain(&batch.targets).all(|&t| t < size));
        }
        prop_assert!(corpus.bigram_val_loss().is_finite());
    }
    Ok(())
}

fn generated_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..4096),
        // Right-sized CIFAR files with random labels and pixels.
        (1usize..4, any::<u8>()).prop_map(|(n, fill)| vec![fill % 12; n * CIFAR10_RECORD_BYTES]),
    ]
}

/// Random bytes, and random strings of characters (mostly valid UTF-8, some
/// long enough to make a corpus).
fn generated_text() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        "(?s).{0,300}".prop_map(String::into_bytes),
    ]
}

/// Fuzzes `check` with `cases` random byte strings, then `cases` mutations of `bases`;
/// returns the rate (cases per second) of each.
fn random_and_mutated(
    name: &str,
    cases: u32,
    bases: Vec<Base>,
    check: impl Fn(Vec<u8>) -> Result<(), TestCaseError>,
) -> Vec<f64> {
    let random = prop::collection::vec(any::<u8>(), 0..4096);
    vec![
        fuzz(&format!("{name}, generated"), cases, random, &check),
        fuzz(&format!("{name}, mutated"), cases, mutated(bases), &check),
    ]
}

/// An optimizer over two small tensors, its state file after two steps, and the
/// configuration to rebuild it.
struct StateFixture {
    optimizer: Optimizer,
    file: Vec<u8>,
}

fn state_fixture(ctx: &GpuContext, config: OptimizerConfig) -> StateFixture {
    let store = ParamStore::new(ctx, &[("w", vec![3, 5]), ("b", vec![5])]).unwrap();
    store
        .grads
        .write(ctx, TensorId(0), &[0.5; 15])
        .and_then(|()| store.grads.write(ctx, TensorId(1), &[-0.25; 5]))
        .unwrap();
    let mut optimizer = Optimizer::new(ctx, &store, config).unwrap();
    optimizer.step_blocking().unwrap();
    optimizer.step_blocking().unwrap();
    let file = pollster::block_on(optimizer.state_bytes()).unwrap();
    StateFixture { optimizer, file }
}

fn state_fixtures(ctx: &GpuContext) -> Vec<StateFixture> {
    vec![
        state_fixture(ctx, OptimizerConfig::adamw(1e-2)),
        state_fixture(
            ctx,
            OptimizerConfig::lion(1e-3).with_state_dtype(ElementType::Bf16),
        ),
    ]
}

fn run_state_fuzz(cases: u32) -> Vec<f64> {
    let ctx = ctx();
    let mut fixtures = state_fixtures(&ctx);
    let bases: Vec<Base> = fixtures
        .iter()
        .map(|f| Base {
            bytes: f.file.clone(),
            gzip_after: false,
        })
        .collect();
    let fixtures = Mutex::new(&mut fixtures);
    let check = |bytes: Vec<u8>| {
        let mut fixtures = fixtures.lock().unwrap();
        for f in fixtures.iter_mut() {
            let _ = bounded(&bytes, |b| f.optimizer.load_state_bytes(b, "fuzz"))?;
        }
        Ok(())
    };
    random_and_mutated("state file", cases, bases, check)
}

/// The checkpoint of `config` (16 samples per step) after two of its four steps.
fn checkpoint_of(ctx: &GpuContext, data: &Arc<DatasetSplit>, config: TrainConfig) -> Vec<u8> {
    let mut config = config.with_steps(4);
    config.batch_size = 16;
    config.eval_batch_size = 32;
    let mut s = Session::new(ctx, config, data.clone()).unwrap();
    s.step().unwrap();
    s.step().unwrap();
    s.wait().unwrap();
    pollster::block_on(s.checkpoint_bytes()).unwrap()
}

/// Checkpoints of a 784-8-10 MLP and of a one-block ViT (width 8, 2 heads).
fn checkpoint_bases(ctx: &GpuContext, data: &Arc<DatasetSplit>) -> Vec<Base> {
    let vit = ModelSpec::Vit(common::model::tiny_digit_vit(8));
    [
        mlp_run(8, OptimizerKind::C_ADAMW, 4),
        TrainConfig::for_model(vit, OptimizerKind::C_ADAMW),
    ]
    .into_iter()
    .map(|config| Base {
        bytes: checkpoint_of(ctx, data, config),
        gzip_after: false,
    })
    .collect()
}

/// Most this many sessions are kept for restoring checkpoints into.
const MAX_SESSIONS: usize = 8;

/// Loads checkpoints the way [`Session::from_checkpoint_bytes`] does, but restores
/// each one into a session built earlier for the same configuration, so that a case
/// costs a parse and a restore rather than a whole new model on the GPU.
struct Loader {
    ctx: GpuContext,
    data: Arc<DatasetSplit>,
    sessions: Vec<Session>,
}

impl Loader {
    fn load(&mut self, bytes: &[u8]) -> coptim::Result<&Session> {
        let file = CheckpointFile::parse(bytes, &self.data.clone().into(), "fuzz")?;
        let index = match self
            .sessions
            .iter()
            .position(|s| s.config() == file.config())
        {
            Some(i) => i,
            None => {
                let s = Session::new(&self.ctx, file.config().clone(), self.data.clone())?;
                if self.sessions.len() == MAX_SESSIONS {
                    self.sessions.pop();
                }
                self.sessions.insert(0, s);
                0
            }
        };
        let session = &mut self.sessions[index];
        let restored = session.restore(&file);
        // Run the queued parameter and state writes before the next case.
        self.ctx.queue().submit(std::iter::empty());
        self.ctx.wait_idle()?;
        restored.map(|()| &*session)
    }
}

fn run_checkpoint_fuzz(cases: u32) -> Vec<f64> {
    let ctx = ctx();
    let data = bundled_subset(128, 32);
    let bases = checkpoint_bases(&ctx, &data);
    let loader = Mutex::new(Loader {
        ctx: ctx.clone(),
        data,
        sessions: Vec::new(),
    });
    let restored = AtomicUsize::new(0);
    let check = |bytes: Vec<u8>| {
        let mut loader = loader.lock().unwrap();
        let loaded = bounded(&bytes, |b| {
            loader
                .load(b)
                .map(|s| (s.steps_recorded(), s.config().steps))
        })?;
        match loaded {
            Ok((step, budget)) => {
                restored.fetch_add(1, Ordering::Relaxed);
                prop_assert!(step <= budget)
            }
            Err(e @ (Error::Gpu(_) | Error::DeviceLost(_))) => prop_assert!(false, "{e}"),
            Err(_) => {}
        }
        Ok(())
    };
    let rates = random_and_mutated("checkpoint", cases, bases, check);
    println!("checkpoints restored: {}", restored.load(Ordering::Relaxed));
    rates
}

fn run_data_fuzz(cases: u32) -> Vec<f64> {
    let rates = vec![
        fuzz("idx + mnist, generated", cases, generated_idx(), check_idx),
        fuzz(
            "idx + mnist, mutated",
            cases,
            mutated(idx_bases()),
            check_idx,
        ),
        fuzz("cifar, generated", cases, generated_bytes(), check_cifar),
        fuzz("cifar, mutated", cases, mutated(cifar_bases()), check_cifar),
        fuzz("text, generated", cases, generated_text(), check_text),
        fuzz("text, mutated", cases, mutated(text_bases()), check_text),
    ];
    println!(
        "text corpora built: {}",
        TEXT_CORPORA.load(Ordering::Relaxed)
    );
    rates
}

#[test]
fn data_parsers_survive_generated_and_mutated_files() {
    run_data_fuzz(QUICK_CASES);
}

#[test]
fn state_loader_survives_generated_and_mutated_files() {
    run_state_fuzz(QUICK_CASES);
}

#[test]
fn checkpoint_loader_survives_generated_and_mutated_files() {
    run_checkpoint_fuzz(QUICK_CASES);
}

#[test]
#[ignore = "long: 100,000 cases per parser and input kind"]
fn full_data_parsers() {
    run_data_fuzz(FULL_CASES);
}

#[test]
#[ignore = "long: 100,000 cases per parser and input kind"]
fn full_state_loader() {
    run_state_fuzz(FULL_CASES);
}

#[test]
#[ignore = "long: 100,000 cases per parser and input kind"]
fn full_checkpoint_loader() {
    run_checkpoint_fuzz(FULL_CASES);
}
