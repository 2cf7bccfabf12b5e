//! JavaScript bindings for the browser demo (wasm32 only, through wasm-bindgen).
//!
//! The page (`web/`) uses them as follows; every GPU readback is a `Promise`, so the
//! page's main thread never blocks on the GPU:
//!
//! ```js
//! import init, { openGpu, MnistData, TextData, Comparison, presets, pairs } from './pkg/coptim.js';
//! await init();
//! JSON.parse(presets());                            // the model presets, with every optimizer's lr
//! JSON.parse(pairs());                              // [{ pair: 'adamw', label: 'AdamW vs C-AdamW' }, ...]
//! const gpu = await openGpu();                      // rejects without a WebGPU adapter
//! const data = MnistData.parse(trainImages, trainLabels, testImages, testLabels);
//! const cmp = Comparison.create(gpu, data, JSON.stringify(
//!   { pair: 'adamw', model: 'mlp-small', lr: 1e-3, batchSize: 64, seed: 0 }));
//! const text = TextData.parse(trainBytes, 'train.txt', validationBytes, 'validation.txt');
//! Comparison.createText(gpu, text, JSON.stringify({ pair: 'adamw', model: 'llama-tiny', ... }));
//! cmp.optimizers();                                 // ['AdamW', 'C-AdamW']
//! JSON.parse(await cmp.train(8));                   // { steps, loss: [[..], [..]], kept: [null, 0.61] }
//! JSON.parse(await cmp.evaluate());                 // { accuracy: [0.91, 0.92], loss: [0.3, 0.29] }
//! JSON.parse(await cmp.sample(JSON.stringify(        // language models: { samples: ['...', '...'] }
//!   { prompt: 'ROMEO:', length: 60, temperature: 0.8, topK: null, seed: 0 })));
//! await cmp.predict(pixels);                        // Float32Array: 10 probabilities per run
//! JSON.parse(await cmp.reconstructTest(8));         // masked autoencoders: { height, width, patch,
//! JSON.parse(await cmp.reconstructDrawing(pixels, 3)); //  count, removed, images, runs: [[..], [..]] }
//! JSON.parse(await embedCheck(gpu, JSON.stringify(   // the embedding flow against the f64 reference
//!   { optimizer: 'cadamw', lr: 1e-2, weightDecay: 0.01, steps: 6 })));
//! ```

mod embed_check;
mod pair;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::data::text::decode_utf8;
use crate::data::{DatasetSplit, parse_mnist};
use crate::{ContextOptions, GpuContext};
use pair::{PageData, Pair, PairOptions, SampleOptions};

/// Most test digits one [`Comparison::reconstruct_test`] call shows.
const MAX_SHOWN: usize = 64;

fn js_error(err: impl std::fmt::Display) -> JsValue {
    JsError::new(&err.to_string()).into()
}

/// Installs a panic hook that logs panics to the browser console.
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error(&info.to_string());
    }));
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);

    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &js_sys::Function, ms: i32);
}

/// Resolves once the GPU has finished all work submitted so far.
async fn gpu_done(ctx: &GpuContext) {
    let (tx, rx) = futures_channel::oneshot::channel();
    ctx.queue().on_submitted_work_done(move || {
        let _ = tx.send(());
    });
    // A dropped sender means the device is gone; the next GPU call reports that.
    let _ = rx.await;
}

/// Yields to the browser's event loop for one task (a `setTimeout(0)`).
async fn next_turn() {
    let promise = Promise::new(&mut |resolve, _reject| set_timeout(&resolve, 0));
    // The promise cannot reject.
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// A WebGPU device opened by [`open_gpu`] (the page names the adapter from
/// `GPUAdapter.info`, which wgpu does not fill in on the web).
#[wasm_bindgen]
pub struct Gpu {
    ctx: GpuContext,
}

/// Requests a WebGPU adapter and device; rejects with a readable message when the
/// browser offers none.
#[wasm_bindgen(js_name = openGpu)]
pub async fn open_gpu() -> Result<Gpu, JsValue> {
    let options = ContextOptions {
        backends: Some(wgpu::Backends::BROWSER_WEBGPU),
        ..ContextOptions::default()
    };
    let ctx = GpuContext::new(&options).await.map_err(js_error)?;
    Ok(Gpu { ctx })
}

/// MNIST-format data (the four standard IDX files, gzipped or not) parsed in memory.
#[wasm_bindgen]
pub struct MnistData {
    split: Arc<DatasetSplit>,
}

#[wasm_bindgen]
impl MnistData {
    /// Parses the training images and labels and the test images and labels.
    pub fn parse(
        train_images: &[u8],
        train_labels: &[u8],
        test_images: &[u8],
        test_labels: &[u8],
    ) -> Result<MnistData, JsValue> {
        let split = parse_mnist(
            (train_images, "train-images-idx3-ubyte.gz"),
            (train_labels, "train-labels-idx1-ubyte.gz"),
            (test_images, "t10k-images-idx3-ubyte.gz"),
            (test_labels, "t10k-labels-idx1-ubyte.gz"),
        )
        .map_err(js_error)?;
        Ok(MnistData {
            split: Arc::new(split),
        })
    }
}

/// A training and a validation text (UTF-8) for the language model: the page fetches
/// the bundled Shakespeare's `train.txt` and `validation.txt`.
#[wasm_bindgen]
pub struct TextData {
    train: (Arc<str>, Arc<str>),
    validation: (Arc<str>, Arc<str>),
}

#[wasm_bindgen]
impl TextData {
    /// Decodes both texts (a leading byte-order mark is dropped); `trainName` and
    /// `validationName` name them in errors. Rejects a text that is empty or not UTF-8.
    pub fn parse(
        train: &[u8],
        train_name: &str,
        validation: &[u8],
        validation_name: &str,
    ) -> Result<TextData, JsValue> {
        let text = |bytes, name: &str| -> Result<(Arc<str>, Arc<str>), JsValue> {
            Ok((
                decode_utf8(bytes, name).map_err(js_error)?.into(),
                name.into(),
            ))
        };
        Ok(TextData {
            train: text(train, train_name)?,
            validation: text(validation, validation_name)?,
        })
    }
}

/// Two identical models trained side by side, each with its own optimizer.
///
/// One call at a time: await each `train`, `evaluate` or `predict` before the next
/// (a call made while another is in flight rejects).
#[wasm_bindgen]
pub struct Comparison {
    /// Empty while a call is in flight: the call owns the pair across its awaits.
    pair: Rc<RefCell<Option<Pair>>>,
    names: [String; 2],
}

/// Runs `work` on the pair taken out of `slot`, then puts the pair back.
fn with_pair<T, F>(slot: Rc<RefCell<Option<Pair>>>, work: F) -> Promise
where
    T: Into<JsValue>,
    F: AsyncFnOnce(&mut Pair) -> crate::Result<T> + 'static,
{
    future_to_promise(async move {
        let mut pair = slot
            .borrow_mut()
            .take()
            .ok_or_else(|| js_error("the comparison is busy with another call"))?;
        let result = work(&mut pair).await;
        *slot.borrow_mut() = Some(pair);
        result.map(Into::into).map_err(js_error)
    })
}

fn json(value: impl serde::Serialize) -> crate::Result<String> {
    serde_json::to_string(&value).map_err(|e| crate::Error::InvalidConfig(e.to_string()))
}

/// The model presets as JSON (`[{ name, description, model, steps, batchSize,
/// optimizers: { adamw: { lr, weightDecay }, ... }, browser }, ...]`): the page's
/// models and default learning rates and batch size come from here.
#[wasm_bindgen]
pub fn presets() -> Result<String, JsValue> {
    json(crate::train::presets::views()).map_err(js_error)
}

/// The optimizer pairs the page offers, as JSON (`[{ pair: 'adamw', label: 'AdamW vs
/// C-AdamW' }, ...]`): every registered plain optimizer with a cautious twin.
#[wasm_bindgen]
pub fn pairs() -> Result<String, JsValue> {
    json(crate::train::presets::pairs()).map_err(js_error)
}

/// Runs the embedding flow on `gpu` (the caller's own buffers at odd offsets, an
/// interleaved one among them; several steps with the caller's learning rates recorded
/// into one encoder of its own; the per-step records read back asynchronously) and
/// compares it with the f64 reference. `options` is JSON `{ optimizer: a cautious
/// timm name, lr, weightDecay, steps, seed, fault: null | 'nonfinite' | 'out-of-range' }`.
/// Resolves to the JSON report (see `embed_check::CheckReport`: per-step records next
/// to the reference's, the parameters' errors and tolerance); rejects with the typed
/// error's message for a bad view or option.
#[wasm_bindgen(js_name = embedCheck)]
pub fn embed_check(gpu: &Gpu, options: &str) -> Promise {
    let ctx = gpu.ctx.clone();
    let options = serde_json::from_str::<embed_check::CheckOptions>(options);
    future_to_promise(async move {
        let options = options.map_err(js_error)?;
        let report = embed_check::run(&ctx, &options).await.map_err(js_error)?;
        json(report).map(JsValue::from).map_err(js_error)
    })
}

#[wasm_bindgen]
impl Comparison {
    /// Builds both runs from JSON options `{ pair: a plain optimizer's name (see `pairs`),
    /// model: a preset name, lr, batchSize, seed }`: same initial weights, same batches.
    pub fn create(gpu: &Gpu, data: &MnistData, options: &str) -> Result<Comparison, JsValue> {
        Self::build(gpu, PageData::Images(data.split.clone()), options)
    }

    /// Builds both runs of a language model (`model`: a LLaMA preset) on `text`, with
    /// the same JSON options as [`Comparison::create`].
    #[wasm_bindgen(js_name = createText)]
    pub fn create_text(gpu: &Gpu, text: &TextData, options: &str) -> Result<Comparison, JsValue> {
        let data = PageData::Text {
            train: text.train.clone(),
            validation: text.validation.clone(),
        };
        Self::build(gpu, data, options)
    }

    fn build(gpu: &Gpu, data: PageData, options: &str) -> Result<Comparison, JsValue> {
        let options: PairOptions = serde_json::from_str(options).map_err(js_error)?;
        let pair = Pair::new(&gpu.ctx, data, &options).map_err(js_error)?;
        Ok(Comparison {
            names: pair.names(),
            pair: Rc::new(RefCell::new(Some(pair))),
        })
    }

    /// The two optimizers' names, base first.
    pub fn optimizers(&self) -> Vec<String> {
        self.names.to_vec()
    }

    /// Trains both runs for `steps` steps (1 to 64) on the same batches and resolves
    /// to JSON `{ steps, loss: [[...], [...]], kept: [a, b] }`: the loss of every step,
    /// and each run's newest caution kept fraction (`null` without caution).
    pub fn train(&self, steps: usize) -> Promise {
        with_pair(self.pair.clone(), async move |pair: &mut Pair| {
            json(pair.train(steps).await?)
        })
    }

    /// Evaluates both models; resolves to JSON `{ accuracy: [a, b], loss: [a, b] }`:
    /// test accuracy and loss on the digits, or a language model's next-character
    /// accuracy and validation loss (nats per token).
    pub fn evaluate(&self) -> Promise {
        with_pair(self.pair.clone(), async |pair: &mut Pair| {
            let [a, b] = pair.evaluate().await?;
            json(serde_json::json!({
                "accuracy": [a.accuracy, b.accuracy],
                "loss": [a.loss, b.loss],
            }))
        })
    }

    /// Continues one prompt with both language models and the same sampling seed.
    /// `options` is JSON `{ prompt, length (1-256), temperature, topK (null: all),
    /// seed }`; resolves to JSON `{ samples: [a, b] }` (the drawn text, without the
    /// prompt); rejects for an image model or a character outside the vocabulary.
    pub fn sample(&self, options: &str) -> Promise {
        let options = serde_json::from_str::<SampleOptions>(options);
        with_pair(self.pair.clone(), async move |pair: &mut Pair| {
            let options = options.map_err(|e| crate::Error::InvalidConfig(e.to_string()))?;
            json(serde_json::json!({ "samples": pair.sample(&options).await? }))
        })
    }

    /// A masked autoencoder's view of the first `count` (1 to 64) test digits under
    /// the fixed validation masks; resolves to JSON `{ height, width, patch, count,
    /// removed, images, runs: [a, b] }` (`removed`: per image and patch whether it was
    /// masked; `images` and each run's reconstruction: `count * height * width`
    /// values in `[0, 1]`, a run's the visible patches as given and the removed ones
    /// predicted). Rejects for a model that does not reconstruct.
    #[wasm_bindgen(js_name = reconstructTest)]
    pub fn reconstruct_test(&self, count: usize) -> Promise {
        with_pair(self.pair.clone(), async move |pair: &mut Pair| {
            if !(1..=MAX_SHOWN).contains(&count) {
                return Err(crate::Error::InvalidConfig(format!(
                    "between 1 and {MAX_SHOWN} images, got {count}"
                )));
            }
            json(pair.reconstruct_test(count).await?)
        })
    }

    /// Both masked autoencoders' reconstructions of one 28x28 image (784 values in
    /// `[0, 1]`, 1 = ink) under a random mask drawn from `maskSeed`; resolves to JSON
    /// as [`Comparison::reconstruct_test`] does (one image).
    #[wasm_bindgen(js_name = reconstructDrawing)]
    pub fn reconstruct_drawing(&self, pixels: &[f32], mask_seed: u32) -> Promise {
        let pixels = pixels.to_vec();
        with_pair(self.pair.clone(), async move |pair: &mut Pair| {
            json(
                pair.reconstruct_drawing(&pixels, u64::from(mask_seed))
                    .await?,
            )
        })
    }

    /// Classifies one 28x28 image (784 values in `[0, 1]`, row-major, 1 = ink) with
    /// both models; resolves to a `Float32Array` of 10 probabilities per run.
    pub fn predict(&self, pixels: &[f32]) -> Promise {
        let pixels = pixels.to_vec();
        with_pair(self.pair.clone(), async move |pair: &mut Pair| {
            let probabilities = pair.predict(&pixels).await?;
            Ok(js_sys::Float32Array::from(&probabilities[..]))
        })
    }
}
