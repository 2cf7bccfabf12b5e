//! [`Model`]: an [`Architecture`]'s parameters on the GPU, with compiled graphs per
//! batch size for training steps, evaluation and inference.

use std::collections::HashMap;
use std::sync::Arc;

use crate::arena::readback::{ReadbackQueue, Source};
use crate::arena::{BufferView, ParamStore, TensorId, UploadRing};
use crate::context::GpuContext;
use crate::error::{Error, Result};
use crate::model::arch::{Architecture, InputKind, MaskVars, Masking, ModelIo, Output, Task};
use crate::model::init::rng_for_seed;
use crate::model::masking::{MaskRows, PatchMasks};
use crate::model::metrics::BatchOutputs;
use crate::model::patch_grid::PatchGrid;
use crate::nn::{Graph, GraphBuilder, Kernels, Var};

/// A model's inputs on the CPU, flat and row-major (`batch * sample_len` values, see
/// [`ModelIo::sample_shape`]), of the [`InputKind`] the model reads.
#[derive(Debug, Clone, Copy)]
pub enum Inputs<'a> {
    /// Pixel values.
    Images(&'a [f32]),
    /// Token ids, each below the vocabulary size.
    Tokens(&'a [u32]),
}

impl Inputs<'_> {
    /// The number of values.
    pub fn len(&self) -> usize {
        match self {
            Inputs::Images(v) => v.len(),
            Inputs::Tokens(v) => v.len(),
        }
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kind of input these are.
    pub fn kind(&self) -> InputKind {
        match self {
            Inputs::Images(_) => InputKind::Images,
            Inputs::Tokens(_) => InputKind::Tokens,
        }
    }

    /// Samples `start..start + rows` of `sample` values each.
    fn rows(&self, start: usize, rows: usize, sample: usize) -> Self {
        let range = start * sample..(start + rows) * sample;
        match self {
            Inputs::Images(v) => Inputs::Images(&v[range]),
            Inputs::Tokens(v) => Inputs::Tokens(&v[range]),
        }
    }
}

/// One batch on the CPU: the inputs and their labels, one per image or one per
/// token (the next token) as [`ModelIo::labels_per_sample`] says; for a
/// reconstructing model ([`Task::Reconstruct`]) the images' masks instead.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// The inputs, `batch_size * sample_len` values.
    pub inputs: Inputs<'a>,
    /// Labels (targets), each below the number of classes; unused when reconstructing.
    pub labels: &'a [u32],
    /// The masks of a reconstructing model's images, one row per image.
    pub masks: Option<MaskRows<'a>>,
}

impl<'a> Batch<'a> {
    /// The batch of `images` (flat, row-major) and their `labels`.
    pub fn new(images: &'a [f32], labels: &'a [u32]) -> Self {
        Self {
            inputs: Inputs::Images(images),
            labels,
            masks: None,
        }
    }

    /// The batch of `images` (flat, row-major) for a reconstructing model, with one
    /// row of `masks` per image.
    pub fn masked(images: &'a [f32], masks: MaskRows<'a>) -> Self {
        Self {
            inputs: Inputs::Images(images),
            labels: &[],
            masks: Some(masks),
        }
    }

    /// The batch of token windows `ids` (`[batch, context]`, row-major) and their
    /// next-token `targets` (same layout).
    pub fn tokens(ids: &'a [u32], targets: &'a [u32]) -> Self {
        Self {
            inputs: Inputs::Tokens(ids),
            labels: targets,
            masks: None,
        }
    }

    /// Samples `start..start + rows` of `sample` input values and `per` labels each.
    fn rows(&self, start: usize, rows: usize, sample: usize, per: usize) -> Self {
        let labels = match self.labels.is_empty() {
            true => self.labels,
            false => &self.labels[start * per..(start + rows) * per],
        };
        Self {
            inputs: self.inputs.rows(start, rows, sample),
            labels,
            masks: self.masks.map(|m| m.slice(start, rows)),
        }
    }
}

/// The result of [`Model::evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// Mean softmax cross-entropy over all labels (nats per token for a language
    /// model); a reconstructing model's masked loss over all removed patches.
    pub loss: f64,
    /// Labels whose highest logit is at the label (0 when reconstructing).
    pub correct: usize,
    /// Labels evaluated (samples, or tokens for a language model; images when
    /// reconstructing).
    pub count: usize,
}

impl Evaluation {
    /// `correct / count`.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.count.max(1) as f64
    }
}

/// A named parameter tensor read back from the GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    /// State-dict key.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

/// A graph for one batch size (declared: a [`GraphBuilder`]; compiled: a [`Graph`]),
/// with the variables the model uses.
#[derive(Debug)]
struct Compiled<G = Graph> {
    graph: G,
    inputs: Var,
    /// A classifier's labels and correct count.
    labels: Option<(Var, Var)>,
    /// A reconstructing model's masks.
    masks: Option<MaskVars>,
    loss: Var,
    /// Inference graphs: the probabilities, or the predicted patches.
    output: Option<Var>,
}

/// Batches recorded into one encoder before it is submitted during evaluation and
/// prediction (bounds the staging memory of the uploads).
const BATCHES_PER_SUBMIT: usize = 16;

/// A model (image classifier or language model) on the GPU: its parameters and gradients live in a
/// [`ParamStore`] that an [`Optimizer`](crate::Optimizer) steps in place.
///
/// Graphs are compiled on first use for each batch size (all buffers allocated
/// once) and reused on every later call; nothing is submitted or read back unless a
/// method says so.
///
/// A training step, recorded into one encoder:
///
/// ```no_run
/// # fn main() -> coptim::Result<()> {
/// use coptim::model::{Batch, BatchMetrics, Mlp, Model};
/// use coptim::optim::StepInputs;
/// use coptim::{Optimizer, OptimizerConfig};
/// let ctx = coptim::GpuContext::new_blocking(&Default::default())?;
/// let mut model = Model::new(&ctx, Mlp::default(), 42)?;
/// let mut opt = Optimizer::new(&ctx, model.store(), OptimizerConfig::adamw(1e-3))?;
/// let (images, labels) = (vec![0.0f32; 128 * 784], vec![0u32; 128]);
/// let mut encoder = ctx.device().create_command_encoder(&Default::default());
/// let out = model.record_forward_backward(&mut encoder, Batch::new(&images, &labels))?;
/// // The batch's loss and correct count travel in the optimizer's record of the step.
/// opt.record_step(&mut encoder, &out.step_inputs(StepInputs::scheduled()))?;
/// ctx.queue().submit([encoder.finish()]);
/// for record in opt.take_stats()? { // whatever has arrived, never waits
///     let m = BatchMetrics::from_record(&record, out.batch_size)?;
///     println!("step {} loss {:.4} accuracy {:.3}", record.scheduled_step, m.loss, m.accuracy());
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Model {
    ctx: GpuContext,
    kernels: Arc<Kernels>,
    arch: Box<dyn Architecture>,
    io: ModelIo,
    store: ParamStore,
    ids: Vec<TensorId>,
    train: HashMap<usize, Compiled>,
    infer: HashMap<usize, Compiled>,
    uploads: UploadRing,
    inference_reads: ReadbackQueue<usize>,
}

impl Model {
    /// Allocates the parameters of `arch` and initializes them from `seed` (the same
    /// seed gives the same weights on every platform; see [`Model::initial_values`]).
    /// Checks every shape of the architecture's graph.
    pub fn new(ctx: &GpuContext, arch: impl Architecture + 'static, seed: u64) -> Result<Self> {
        let arch: Box<dyn Architecture> = Box::new(arch);
        let init = Self::initial_values(arch.as_ref(), seed)?;
        let decl: Vec<(&str, Vec<usize>)> = init
            .iter()
            .map(|t| (t.name.as_str(), t.shape.clone()))
            .collect();
        let store = ParamStore::new(ctx, &decl)?;
        let ids = init
            .iter()
            .map(|t| store.layout().id(&t.name))
            .collect::<Result<Vec<_>>>()?;
        for (t, &id) in init.iter().zip(&ids) {
            store.params.write(ctx, id, &t.values)?;
        }
        // wgpu handles are Send + Sync natively but not on wasm32, where the model
        // never leaves the page's thread.
        #[allow(clippy::arc_with_non_send_sync)]
        let model = Self {
            ctx: ctx.clone(),
            kernels: Arc::new(Kernels::new(ctx)),
            io: arch.io(),
            arch,
            store,
            ids,
            train: HashMap::new(),
            infer: HashMap::new(),
            uploads: UploadRing::new("coptim batch upload"),
            inference_reads: ReadbackQueue::new("coptim inference readback"),
        };
        // Shape-check the graph symbolically (nothing is allocated).
        model.declare(1, false)?;
        Ok(model)
    }

    /// The initial parameters of `arch` for `seed`, computed on the CPU: what
    /// [`Model::new`] uploads.
    pub fn initial_values(arch: &dyn Architecture, seed: u64) -> Result<Vec<NamedTensor>> {
        let mut rng = rng_for_seed(seed);
        Ok(arch
            .parameters()?
            .into_iter()
            .map(|p| NamedTensor {
                values: p.init.sample(&mut rng, p.shape.iter().product()),
                name: p.name,
                shape: p.shape,
            })
            .collect())
    }

    /// The architecture.
    pub fn architecture(&self) -> &dyn Architecture {
        self.arch.as_ref()
    }

    /// The architecture's name, inputs and task ([`Architecture::io`]).
    pub fn io(&self) -> &ModelIo {
        &self.io
    }

    /// Parameters and gradients (hand this to [`Optimizer::new`](crate::Optimizer::new)).
    pub fn store(&self) -> &ParamStore {
        &self.store
    }

    /// The GPU context.
    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// Number of parameters (scalars).
    pub fn num_parameters(&self) -> u64 {
        self.store.layout().total_len()
    }

    /// Values per input sample ([`ModelIo::sample_len`]).
    pub fn sample_len(&self) -> usize {
        self.io.sample_len()
    }

    /// Labels per sample ([`ModelIo::labels_per_sample`]).
    pub fn labels_per_sample(&self) -> usize {
        self.io.labels_per_sample()
    }

    /// Records a training step's forward and backward pass for `batch`: uploads the
    /// batch (in encoder order), computes the mean softmax cross-entropy, writes
    /// every parameter's gradient into `store().grads` (overwriting). Returns where
    /// the batch's loss and correct count will be, to hand to the optimizer's step
    /// with [`BatchOutputs::step_inputs`]. Nothing is submitted or read back.
    pub fn record_forward_backward(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        batch: Batch<'_>,
    ) -> Result<BatchOutputs> {
        self.record(encoder, batch, true)
    }

    /// Records only the forward pass of `batch` (no gradients), like
    /// [`Model::record_forward_backward`].
    pub fn record_forward(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        batch: Batch<'_>,
    ) -> Result<BatchOutputs> {
        self.record(encoder, batch, false)
    }

    /// Mean loss and accuracy over a data set, in batches of at most `batch_size`
    /// (forward only; the parameters' gradients are untouched). Submits its own work
    /// and reads back once per `BATCHES_PER_SUBMIT` batches.
    pub async fn evaluate(
        &mut self,
        images: &[f32],
        labels: &[u32],
        batch_size: usize,
    ) -> Result<Evaluation> {
        self.evaluate_batches(Batch::new(images, labels), batch_size)
            .await
    }

    /// Mean loss (per label: nats per token for a language model) and accuracy over
    /// a data set of any input kind, in batches of at most `batch_size` samples, like
    /// [`Model::evaluate`].
    pub async fn evaluate_batches(
        &mut self,
        data: Batch<'_>,
        batch_size: usize,
    ) -> Result<Evaluation> {
        let n = self.check_batch(data)?;
        let per_batch = self
            .run_inference(data, batch_size, |c| {
                let mut picked = vec![(c.loss, 1)];
                picked.extend(c.labels.map(|(_, correct)| (correct, 1)));
                picked
            })
            .await?;
        let mut eval = Evaluation {
            loss: 0.0,
            correct: 0,
            count: match self.io.task {
                Task::Classify => data.labels.len(),
                Task::Reconstruct(_) => n,
            },
        };
        for (rows, values) in per_batch {
            eval.loss += values[0] as f64 * rows as f64;
            eval.correct += values.get(1).map_or(0, |&c| c as usize);
        }
        eval.loss /= n as f64;
        Ok(eval)
    }

    /// Blocking form of [`Model::evaluate`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn evaluate_blocking(
        &mut self,
        images: &[f32],
        labels: &[u32],
        batch_size: usize,
    ) -> Result<Evaluation> {
        pollster::block_on(self.evaluate(images, labels, batch_size))
    }

    /// Blocking form of [`Model::evaluate_batches`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn evaluate_batches_blocking(
        &mut self,
        data: Batch<'_>,
        batch_size: usize,
    ) -> Result<Evaluation> {
        pollster::block_on(self.evaluate_batches(data, batch_size))
    }

    /// Class probabilities (softmax of the logits), `count * classes` values, for
    /// `images` in batches of at most `batch_size`.
    pub async fn predict_probabilities(
        &mut self,
        images: &[f32],
        batch_size: usize,
    ) -> Result<Vec<f32>> {
        self.predict(Inputs::Images(images), batch_size).await
    }

    /// Probabilities (softmax of the logits) for inputs of any kind, in batches of
    /// at most `batch_size` samples: `count * labels_per_sample * classes` values
    /// (for token windows, the next-token distribution after every position).
    pub async fn predict(&mut self, inputs: Inputs<'_>, batch_size: usize) -> Result<Vec<f32>> {
        let sample = self.sample_len();
        let n = inputs.len() / sample;
        // Placeholder labels: the length check is the batch's, the values unused.
        let labels = vec![0; n * self.labels_per_sample()];
        let batch = Batch {
            inputs,
            labels: &labels,
            masks: None,
        };
        if self.io.task != Task::Classify {
            return Err(Error::InvalidConfig(format!(
                "the {} model does not classify: it has no probabilities",
                self.io.name
            )));
        }
        self.check_batch(batch)?;
        let classes = self.io.classes;
        let per_batch = self
            .run_inference(batch, batch_size, |c| {
                let output = c.output.expect("inference graphs have an output");
                vec![(output, classes)]
            })
            .await?;
        Ok(per_batch.into_iter().flat_map(|(_, v)| v).collect())
    }

    /// Blocking form of [`Model::predict_probabilities`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn predict_probabilities_blocking(
        &mut self,
        images: &[f32],
        batch_size: usize,
    ) -> Result<Vec<f32>> {
        pollster::block_on(self.predict_probabilities(images, batch_size))
    }

    /// Blocking form of [`Model::predict`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn predict_blocking(&mut self, inputs: Inputs<'_>, batch_size: usize) -> Result<Vec<f32>> {
        pollster::block_on(self.predict(inputs, batch_size))
    }

    /// A reconstructing model's prediction of `images` under `masks` (one row per
    /// image), in batches of at most `batch_size`: images `[count, sample_shape..]`
    /// whose every patch is the model's prediction (the visible ones included; with
    /// normalized targets each patch is in normalized units). Forward only.
    pub async fn reconstruct(
        &mut self,
        images: &[f32],
        masks: &PatchMasks,
        batch_size: usize,
    ) -> Result<Vec<f32>> {
        let batch = Batch::masked(images, masks.all());
        self.check_batch(batch)?;
        let m = masks.masking();
        let patch_len = m.grid.patch_len();
        let per_batch = self
            .run_inference(batch, batch_size, |c| {
                let output = c.output.expect("inference graphs have an output");
                vec![(output, (m.patches() + 1) * patch_len)]
            })
            .await?;
        let rows = per_batch
            .into_iter()
            .flat_map(|(_, v)| v)
            .collect::<Vec<_>>();
        Ok(unpatchify(&rows, m.grid))
    }

    /// Blocking form of [`Model::reconstruct`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn reconstruct_blocking(
        &mut self,
        images: &[f32],
        masks: &PatchMasks,
        batch_size: usize,
    ) -> Result<Vec<f32>> {
        pollster::block_on(self.reconstruct(images, masks, batch_size))
    }

    /// Every parameter, in state-dict order, read back from the GPU.
    pub async fn read_parameters(&self) -> Result<Vec<NamedTensor>> {
        let mut out = Vec::with_capacity(self.ids.len());
        for &id in &self.ids {
            let info = self.store.layout().info(id);
            out.push(NamedTensor {
                name: info.name.clone(),
                shape: info.shape.clone(),
                values: self.store.params.read(&self.ctx, id).await?,
            });
        }
        Ok(out)
    }

    /// Blocking form of [`Model::read_parameters`].
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_parameters_blocking(&self) -> Result<Vec<NamedTensor>> {
        pollster::block_on(self.read_parameters())
    }

    /// Overwrites parameters by name (e.g. weights loaded from a file); every tensor
    /// must exist with the same number of elements.
    pub fn write_parameters(&self, tensors: &[NamedTensor]) -> Result<()> {
        for t in tensors {
            self.store
                .params
                .write_named(&self.ctx, &t.name, &t.values)?;
        }
        Ok(())
    }

    /// The parameters as a safetensors file (f32, PyTorch state-dict keys and shapes),
    /// loadable with `safetensors.torch.load_file` and `load_state_dict`.
    pub async fn to_safetensors(&self) -> Result<Vec<u8>> {
        let params = self.read_parameters().await?;
        let bytes: Vec<Vec<u8>> = params
            .iter()
            .map(|t| bytemuck::cast_slice(&t.values).to_vec())
            .collect();
        let views = params
            .iter()
            .zip(&bytes)
            .map(|(t, b)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape.clone(), b)
                    .map(|v| (t.name.clone(), v))
                    .map_err(|e| Error::InvalidConfig(format!("safetensors: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, None)
            .map_err(|e| Error::InvalidConfig(format!("safetensors: {e}")))
    }

    fn record(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        batch: Batch<'_>,
        train: bool,
    ) -> Result<BatchOutputs> {
        self.ctx.check_lost()?;
        let n = self.check_batch(batch)?;
        let ctx = self.ctx.clone();
        // Lent out while `compiled` borrows the model.
        let mut uploads =
            std::mem::replace(&mut self.uploads, UploadRing::new("coptim batch upload"));
        let compiled = self.compiled(n, train)?;
        let written = write_batch(compiled, &mut uploads, &ctx, encoder, batch);
        self.uploads = uploads;
        written?;
        // A pipeline that failed to compile was recorded on the context.
        ctx.check_lost()?;
        let compiled = self.compiled(n, train)?;
        compiled.graph.record_forward(encoder);
        if train {
            compiled.graph.record_backward(encoder);
        }
        let view = |v: Var| {
            let t = compiled.graph.value(v);
            BufferView::new(t.buffer(), t.offset())
        };
        Ok(BatchOutputs {
            batch_size: match compiled.labels {
                Some(_) => batch.labels.len(),
                None => n,
            },
            loss: view(compiled.loss),
            correct: compiled.labels.map(|(_, correct)| view(correct)),
        })
    }

    /// Runs the inference graph over `data` (checked) in batches and reads back, per
    /// batch, the variables `pick` names (each with the number of values per row;
    /// scalars use 1). Returns (rows, values) per batch.
    async fn run_inference(
        &mut self,
        data: Batch<'_>,
        batch_size: usize,
        pick: impl Fn(&Compiled) -> Vec<(Var, usize)>,
    ) -> Result<Vec<(usize, Vec<f32>)>> {
        if batch_size == 0 {
            return Err(Error::InvalidConfig("batch size must be positive".into()));
        }
        let sample = self.sample_len();
        let per = self.labels_per_sample();
        let n = data.inputs.len() / sample;
        let ctx = self.ctx.clone();
        let starts: Vec<usize> = (0..n).step_by(batch_size).collect();
        let mut out = Vec::with_capacity(starts.len());
        // Lent out while `compiled` borrows the model.
        let mut reads = std::mem::replace(
            &mut self.inference_reads,
            ReadbackQueue::new("coptim inference readback"),
        );
        let mut uploads =
            std::mem::replace(&mut self.uploads, UploadRing::new("coptim batch upload"));
        for group in starts.chunks(BATCHES_PER_SUBMIT) {
            let mut encoder = self
                .ctx
                .device()
                .create_command_encoder(&Default::default());
            for &start in group {
                let rows = batch_size.min(n - start);
                let compiled = self.compiled(rows, false)?;
                let batch = data.rows(start, rows, sample, per);
                write_batch(compiled, &mut uploads, &ctx, &mut encoder, batch)?;
                let g = &compiled.graph;
                g.record_forward(&mut encoder);
                // Copy out now: a later batch of the same size reuses these buffers.
                let sources: Vec<Source<'_>> = pick(compiled)
                    .into_iter()
                    .map(|(v, _)| {
                        let t = g.value(v);
                        Source {
                            buffer: t.buffer(),
                            offset: t.offset(),
                            size: t.byte_size(),
                        }
                    })
                    .collect();
                reads.record(&ctx, &mut encoder, &sources, rows);
            }
            ctx.queue().submit([encoder.finish()]);
            while reads.in_flight() > 0 {
                let (rows, bytes) = reads.next(&ctx).await?;
                out.push((rows, bytemuck::pod_collect_to_vec(&bytes)));
            }
        }
        self.uploads = uploads;
        self.inference_reads = reads;
        Ok(out)
    }

    /// Checks a batch: the model's kind of input, whole samples, the right number of
    /// labels, labels (and token ids) in range. Returns the number of samples.
    fn check_batch(&self, batch: Batch<'_>) -> Result<usize> {
        let kind = self.io.input;
        if batch.inputs.kind() != kind {
            return Err(Error::shape(
                format!("{} input", self.io.name),
                format!(
                    "the model reads {kind:?}, the batch holds {:?}",
                    batch.inputs.kind()
                ),
            ));
        }
        match self.io.task {
            Task::Classify => self.check_labels(batch),
            Task::Reconstruct(masking) => self.check_masks(batch, masking),
        }
    }

    /// Checks a classifier's batch: whole samples, one label per row of logits,
    /// labels and token ids in range. Returns the number of samples.
    fn check_labels(&self, batch: Batch<'_>) -> Result<usize> {
        let (sample, per) = (self.sample_len(), self.labels_per_sample());
        let n = batch.labels.len() / per;
        if n == 0 || batch.labels.len() != n * per || batch.inputs.len() != n * sample {
            return Err(Error::LengthMismatch {
                what: format!(
                    "inputs for {} labels ({sample} values and {per} labels per sample)",
                    batch.labels.len()
                ),
                expected: (n.max(1) * sample) as u64,
                got: batch.inputs.len() as u64,
            });
        }
        let classes = self.io.classes;
        check_below(batch.labels, classes)?;
        if let Inputs::Tokens(ids) = batch.inputs {
            check_below(ids, classes)?;
        }
        Ok(n)
    }

    /// Checks a reconstructing model's batch: whole images, one row of masks of the
    /// model's shape per image. Returns the number of images.
    fn check_masks(&self, batch: Batch<'_>, masking: Masking) -> Result<usize> {
        let sample = self.sample_len();
        let n = batch.inputs.len() / sample;
        if n == 0 || batch.inputs.len() != n * sample {
            return Err(Error::LengthMismatch {
                what: format!("whole images of {sample} values"),
                expected: (n.max(1) * sample) as u64,
                got: batch.inputs.len() as u64,
            });
        }
        match batch.masks {
            Some(m) if m.masking == masking && m.rows() == n => Ok(n),
            other => Err(Error::InvalidConfig(format!(
                "the {} model needs one mask row per image ({n} rows of {masking:?}), the \
                 batch has {:?}",
                self.io.name,
                other.map(|m| (m.rows(), m.masking))
            ))),
        }
    }

    /// Declares the model's graph for `batch` samples (`output`: with the inference
    /// output).
    fn declare(&self, batch: usize, output: bool) -> Result<Compiled<GraphBuilder>> {
        let mut g = GraphBuilder::new(self.store.layout().clone());
        let mut shape = vec![batch];
        shape.extend(&self.io.sample_shape);
        let inputs = match self.io.input {
            InputKind::Images => g.input(&shape),
            InputKind::Tokens => g.ids(&shape),
        };
        let declared = match self.arch.output(&mut g, inputs)? {
            Output::Logits(logits) => Self::declare_classifier(&mut g, inputs, logits, output)?,
            Output::Reconstruction(r) => Compiled {
                graph: (),
                inputs,
                labels: None,
                masks: Some(r.masks),
                loss: r.loss,
                output: output.then_some(r.prediction),
            },
        };
        Ok(Compiled {
            graph: g,
            inputs: declared.inputs,
            labels: declared.labels,
            masks: declared.masks,
            loss: declared.loss,
            output: declared.output,
        })
    }

    /// Declares a classifier's loss, correct count and (with `output`) probabilities
    /// from its `logits`.
    fn declare_classifier(
        g: &mut GraphBuilder,
        inputs: Var,
        logits: Var,
        output: bool,
    ) -> Result<Compiled<()>> {
        // One label per row of logits: `[batch]` for images, `[batch, context]` for
        // tokens.
        let rows = g
            .shape(logits)
            .split_last()
            .map_or(&[][..], |(_, r)| r)
            .to_vec();
        let labels = g.ids(&rows);
        let loss = g.cross_entropy(logits, labels)?;
        let correct = g.correct_count(logits, labels)?;
        let output = match output {
            true => Some(g.softmax(logits)?),
            false => None,
        };
        Ok(Compiled {
            graph: (),
            inputs,
            labels: Some((labels, correct)),
            masks: None,
            loss,
            output,
        })
    }

    /// The compiled graph for `batch` samples (training: with gradients), compiling it
    /// on first use.
    fn compiled(&mut self, batch: usize, train: bool) -> Result<&Compiled> {
        let cached = if train { &self.train } else { &self.infer };
        if !cached.contains_key(&batch) {
            let v = self.declare(batch, !train)?;
            let seeds: &[Var] = if train { &[v.loss] } else { &[] };
            let compiled = Compiled {
                graph: v.graph.build(&self.kernels, &self.store, seeds)?,
                inputs: v.inputs,
                labels: v.labels,
                masks: v.masks,
                loss: v.loss,
                output: v.output,
            };
            let map = if train {
                &mut self.train
            } else {
                &mut self.infer
            };
            map.insert(batch, compiled);
        }
        let map = if train { &self.train } else { &self.infer };
        Ok(&map[&batch])
    }
}

/// Records the uploads of `batch` (checked) into a compiled graph's inputs: the
/// samples, and the labels or the masks.
fn write_batch(
    compiled: &Compiled,
    uploads: &mut UploadRing,
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    batch: Batch<'_>,
) -> Result<()> {
    let graph = &compiled.graph;
    let tensor = graph.value(compiled.inputs);
    match batch.inputs {
        Inputs::Images(v) => tensor.record_write(uploads, ctx, encoder, v)?,
        Inputs::Tokens(v) => tensor.record_write(uploads, ctx, encoder, v)?,
    }
    if let Some((labels, _)) = compiled.labels {
        graph
            .value(labels)
            .record_write(uploads, ctx, encoder, batch.labels)?;
    }
    if let (Some(vars), Some(rows)) = (compiled.masks, batch.masks) {
        graph.record_write_ids(vars.keep, uploads, ctx, encoder, rows.keep)?;
        graph.record_write_ids(vars.restore, uploads, ctx, encoder, rows.restore)?;
        graph
            .value(vars.mask)
            .record_write(uploads, ctx, encoder, rows.mask)?;
    }
    Ok(())
}

/// A reconstruction's predicted patches (`[rows, patches + 1, patch values]`, the
/// class token's row first) as the images of `grid` they cut.
fn unpatchify(rows: &[f32], grid: PatchGrid) -> Vec<f32> {
    let patch_len = grid.patch_len();
    let per_image = (grid.num_patches() + 1) * patch_len;
    let mut images = vec![0.0; rows.len() / per_image * grid.sample_len()];
    let sampled = rows.chunks_exact(per_image);
    for (row, image) in sampled.zip(images.chunks_exact_mut(grid.sample_len())) {
        for (n, patch) in row[patch_len..].chunks_exact(patch_len).enumerate() {
            for (i, &v) in patch.iter().enumerate() {
                image[grid.pixel(n, i)] = v;
            }
        }
    }
    images
}

/// Fails with [`Error::LabelOutOfRange`] at the first value of `values` (labels or
/// token ids) that is not below `classes`.
fn check_below(values: &[u32], classes: usize) -> Result<()> {
    match values
        .iter()
        .enumerate()
        .find(|(_, v)| **v as usize >= classes)
    {
        Some((index, &label)) => Err(Error::LabelOutOfRange {
            index,
            label,
            classes,
        }),
        None => Ok(()),
    }
}
