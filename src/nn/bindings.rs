//! The bindings of the nn kernels, named once.
//!
//! Every nn WGSL file reads its uniform block as `params` and its buffers by name
//! (`x`, `dy`, ...) but declares none of them: the builder declares them from the
//! file's [`Family`], which holds the uniform block (a Rust struct defined with
//! [`uniform_block!`], its WGSL struct generated from it) and the bindings in index
//! order. The `BINDING_*` constants, the WGSL declarations and every kernel's bind
//! group layout come from that one table, and the ops bind tensors by the same
//! [`Binding`] constants.

use std::fmt::Write as _;

use crate::wgsl::{ShaderBuilder, WgslStruct};

/// How the kernels access a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Access {
    /// The uniform block.
    Uniform,
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
}

/// One buffer of the nn kernels: its WGSL name, access and element type. A name has
/// one meaning in every file that binds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Binding {
    name: &'static str,
    access: Access,
    element: &'static str,
}

impl Binding {
    /// The WGSL variable name.
    pub fn name(self) -> &'static str {
        self.name
    }
}

const fn binding(name: &'static str, access: Access, element: &'static str) -> Binding {
    Binding {
        name,
        access,
        element,
    }
}

const fn read(name: &'static str) -> Binding {
    binding(name, Access::Read, "f32")
}

const fn read_write(name: &'static str) -> Binding {
    binding(name, Access::ReadWrite, "f32")
}

/// The uniform block, binding 0 of every family (its type is the family's).
pub(crate) const PARAMS: Binding = binding("params", Access::Uniform, "");
/// Input values (the logits, for the loss kernels).
pub(crate) const X: Binding = read("x");
/// A second operand: the broadcast addend, the prepended token.
pub(crate) const OTHER: Binding = read("other");
/// The upstream gradient.
pub(crate) const DY: Binding = read("dy");
/// Output values, or the gradient a flat backward kernel writes.
pub(crate) const OUT: Binding = read_write("out");
/// LayerNorm scale; the embedding table.
pub(crate) const WEIGHT: Binding = read("weight");
/// LayerNorm shift; the matmul's per-column bias.
pub(crate) const BIAS: Binding = read("bias");
/// A row kernel's output (read again by its backward pass).
pub(crate) const Y: Binding = read_write("y");
/// LayerNorm's saved mean and rstd per row.
pub(crate) const STATS: Binding = read_write("stats");
/// A row kernel's input gradient (the logits', for the loss kernels).
pub(crate) const DX: Binding = read_write("dx");
/// LayerNorm's scale gradient; the embedding table's gradient.
pub(crate) const DWEIGHT: Binding = read_write("dweight");
/// LayerNorm's shift gradient.
pub(crate) const DBIAS: Binding = read_write("dbias");
/// Attention's queries (the packed qkv tensor, or q).
pub(crate) const Q: Binding = read("q");
/// Attention's keys (the packed qkv tensor, or k).
pub(crate) const K: Binding = read("k");
/// Attention's values (the packed qkv tensor, or v).
pub(crate) const V: Binding = read("v");
/// Attention probabilities (saved for backward).
pub(crate) const PROBS: Binding = read_write("probs");
/// Attention's upstream gradient.
pub(crate) const D_OUT: Binding = read("d_out");
/// Attention's score gradients.
pub(crate) const D_SCORES: Binding = read_write("d_scores");
/// The gradient of attention's packed qkv, or of one of q, k, v.
pub(crate) const D_QKV: Binding = read_write("d_qkv");
/// RoPE's `[tokens, head_dim / 2, 2]` table of (cos, sin) per position and frequency.
pub(crate) const COS_SIN: Binding = read("cos_sin");
/// Class labels (u32).
pub(crate) const LABELS: Binding = binding("labels", Access::Read, "u32");
/// Token ids (u32), gathered by the embedding.
pub(crate) const IDS: Binding = binding("ids", Access::Read, "u32");
/// The embedding's per-row token lists (u32).
pub(crate) const TOKEN_INDEX: Binding = binding("token_index", Access::ReadWrite, "u32");
/// The regression targets of the masked MSE loss (`target` is a WGSL reserved word).
pub(crate) const TARGET: Binding = read("targets");
/// The masked MSE loss's per-row weights (1 = a masked patch, counted).
pub(crate) const MASK: Binding = read("mask");
/// Per-row scratch of the loss kernels.
pub(crate) const ROWS: Binding = read_write("rows");
/// The loss's upstream gradient.
pub(crate) const DLOSS: Binding = read("dloss");
/// Matmul operand A.
pub(crate) const A: Binding = read("a");
/// Matmul operand B.
pub(crate) const B: Binding = read("b");
/// Matmul result C.
pub(crate) const C: Binding = read_write("c");

/// A [`WgslStruct`] used as a uniform block: defined with [`uniform_block!`], which
/// checks its padding.
pub(crate) trait UniformBlock: WgslStruct {}

/// The bytes of a uniform block and its struct name (any [`UniformBlock`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Uniform {
    name: &'static str,
    bytes: Vec<u8>,
}

impl Uniform {
    /// The WGSL struct's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The block's bytes, as the uniform buffer holds them.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl<P: UniformBlock> From<&P> for Uniform {
    fn from(block: &P) -> Self {
        Self {
            name: P::NAME,
            bytes: bytemuck::bytes_of(block).to_vec(),
        }
    }
}

/// `uniform_block! { /// doc  struct Name { /// doc  field: u32, ... } }`: a uniform
/// block defined once, as [`wgsl_struct!`](crate::wgsl::wgsl_struct) makes it (every
/// field public); padding fields complete the size to a multiple of 16 bytes, which is
/// checked at compile time.
macro_rules! uniform_block {
    (
        $(#[$meta:meta])*
        struct $name:ident {
            $($(#[$field_meta:meta])* $field:ident: $ty:ident),* $(,)?
        }
    ) => {
        $crate::wgsl::wgsl_struct! {
            $(#[$meta])*
            pub(crate) struct $name {
                $($(#[$field_meta])* pub $field: $ty),*
            }
        }

        const _: () = assert!(
            ::std::mem::size_of::<$name>() % 16 == 0,
            "a uniform block is padded to a multiple of 16 bytes"
        );

        impl $crate::nn::bindings::UniformBlock for $name {}
    };
}
pub(crate) use uniform_block;

/// The bindings of one WGSL file: its uniform block (binding 0, [`PARAMS`]) and its
/// buffers, in binding-index order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Family {
    params: &'static str,
    params_wgsl: &'static str,
    buffers: &'static [Binding],
}

impl Family {
    /// The family of a file whose uniform block is `P`, binding `buffers` at 1, 2, ...
    pub const fn new<P: UniformBlock>(buffers: &'static [Binding]) -> Self {
        Self {
            params: P::NAME,
            params_wgsl: P::WGSL,
            buffers,
        }
    }

    /// The uniform block's struct name.
    pub fn params_name(&self) -> &'static str {
        self.params
    }

    /// The binding index of `binding` in this family.
    ///
    /// # Panics
    /// When the family has no such binding (a kernel table naming a buffer its file
    /// does not declare: caught by the tests).
    pub fn index(&self, binding: Binding) -> u32 {
        if binding == PARAMS {
            return 0;
        }
        let i = self.buffers.iter().position(|b| *b == binding);
        let i = i.unwrap_or_else(|| panic!("`{}` has no binding `{}`", self.params, binding.name));
        i as u32 + 1
    }

    /// Adds to `module` the `BINDING_<NAME>` constants, the uniform block's struct and
    /// the declaration of every binding.
    pub fn declare(&self, module: ShaderBuilder) -> ShaderBuilder {
        let all = || std::iter::once(PARAMS).chain(self.buffers.iter().copied());
        let names: Vec<(String, u32)> = all()
            .map(|b| (b.name.to_uppercase(), self.index(b)))
            .collect();
        let table: Vec<(&str, u32)> = names.iter().map(|(n, i)| (n.as_str(), *i)).collect();
        let mut declarations = String::from(self.params_wgsl);
        for b in all() {
            let (space, ty) = match b.access {
                Access::Uniform => ("uniform", self.params.to_string()),
                Access::Read => ("storage, read", format!("array<{}>", b.element)),
                Access::ReadWrite => ("storage, read_write", format!("array<{}>", b.element)),
            };
            let _ = writeln!(
                declarations,
                "@group(0) @binding(BINDING_{}) var<{space}> {}: {ty};",
                b.name.to_uppercase(),
                b.name
            );
        }
        module.bindings(&table).declare(declarations)
    }

    /// The bind group layout entry of `binding` (compute stage, no dynamic offset).
    pub fn layout_entry(&self, binding: Binding) -> wgpu::BindGroupLayoutEntry {
        let ty = match binding.access {
            Access::Uniform => wgpu::BufferBindingType::Uniform,
            Access::Read => wgpu::BufferBindingType::Storage { read_only: true },
            Access::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
        };
        wgpu::BindGroupLayoutEntry {
            binding: self.index(binding),
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }
    }
}
