//! The one way coptim builds its WGSL modules.
//!
//! A module is assembled from, in this order:
//! 1. `enable` directives (`f16`), which WGSL wants before any declaration;
//! 2. constants (and type aliases) generated from Rust: tile sizes, workgroup sizes,
//!    switches, the staging type and binding indices, so the Rust side and the shader read the same numbers from one place
//!    (a WGSL file never declares a constant the builder supplies);
//! 3. declarations and functions generated from Rust (the nn kernels' uniform structs and
//!    bindings, the optimizer's state slots);
//! 4. parts: shared helpers from `shaders/lib/` (or made by a macro, one definition
//!    for several types: `workgroup_sum_part!`) and kernel files from `shaders/`.
//!
//! Each [`Part`] names the functions it provides and the ones it expects another part
//! to provide (an algorithm's hooks, a storage variant's load/store); [`ShaderBuilder::build`]
//! checks both, so the contract between files lives in code rather than in comments.

use std::fmt::Write as _;

use crate::error::{Error, Result};

/// One WGSL file and the functions it provides to, and requires from, the other parts.
#[derive(Debug)]
pub struct Part {
    /// File name (or the macro that made the part), for errors and the part's
    /// header in the module.
    pub name: &'static str,
    /// The WGSL text.
    pub source: &'static str,
    /// Functions this part defines for other parts to call.
    pub provides: &'static [&'static str],
    /// Functions this part calls that another part must define.
    pub requires: &'static [&'static str],
}

/// `shader_part!("file.wgsl", provides, requires)`: the [`Part`] of `shaders/file.wgsl`,
/// its name and its source taken from the one path.
macro_rules! shader_part {
    ($file:literal, $provides:expr, $requires:expr $(,)?) => {
        $crate::wgsl::Part {
            name: $file,
            source: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $file)),
            provides: $provides,
            requires: $requires,
        }
    };
}
pub(crate) use shader_part;

/// `workgroup_sum_part!("name", "scratch", "type")`: the [`Part`] providing
/// `name(value: type, lid: u32) -> type`, the sum of `value` over one workgroup of
/// `WG_SIZE` invocations (a power of two, from the module's generated constants) in
/// a fixed tree order, valid in every invocation. Each type gets its own
/// `var<workgroup> scratch: array<type, WG_SIZE>`, so that a module summing scalars
/// does not pay for a vec4 scratch. One definition for every type (WGSL has no
/// generics), its text made at compile time like [`wgsl_struct!`]'s.
macro_rules! workgroup_sum_part {
    ($name:literal, $scratch:literal, $ty:literal) => {
        $crate::wgsl::Part {
            name: concat!("workgroup_sum_part!(", $name, ")"),
            source: concat!(
                "// ", $name, ": a deterministic sum of ", $ty, " over one workgroup.\n",
                "//\n",
                "// Needs the constant WG_SIZE (a power of two) from the module's generated constants.\n",
                "// Every invocation of the workgroup must call it (it has barriers).\n",
                "\n",
                "var<workgroup> ", $scratch, ": array<", $ty, ", WG_SIZE>;\n",
                "\n",
                "// Sum of `value` over the workgroup in a fixed tree order; the result is valid in\n",
                "// every invocation.\n",
                "fn ", $name, "(value: ", $ty, ", lid: u32) -> ", $ty, " {\n",
                "    ", $scratch, "[lid] = value;\n",
                "    workgroupBarrier();\n",
                "    for (var stride = WG_SIZE / 2u; stride > 0u; stride /= 2u) {\n",
                "        if lid < stride {\n",
                "            ", $scratch, "[lid] += ", $scratch, "[lid + stride];\n",
                "        }\n",
                "        workgroupBarrier();\n",
                "    }\n",
                "    let total = ", $scratch, "[0];\n",
                "    workgroupBarrier();\n",
                "    return total;\n",
                "}\n",
            ),
            provides: &[$name],
            requires: &[],
        }
    };
}
pub(crate) use workgroup_sum_part;

/// Helpers shared by several modules, each defined once.
pub mod lib {
    use super::Part;

    /// `workgroup_linear(wg, nwg)`: the index of a workgroup in a 2-D grid, for
    /// dispatches split past `max_compute_workgroups_per_dimension`, and
    /// `flat_index(inv)`: the index of an invocation in it, from the builtins gathered
    /// in `struct Invocation` (needs the generated `WG_SIZE`).
    pub const GRID: Part = shader_part!("lib/grid.wgsl", &["workgroup_linear", "flat_index"], &[]);

    /// Row teams of one workgroup per row (`ROW_LANES` = `ROW_WG_SIZE`): `row_index`
    /// and `row_lane`; the file documents the row-team interface of the nn row
    /// kernels. Completed by [`ROWS_WORKGROUP`] or [`ROWS_SUBGROUP`].
    pub const ROWS_TEAM: Part = shader_part!(
        "lib/rows_team.wgsl",
        &["row_index", "row_lane"],
        &["workgroup_linear"]
    );

    /// The reductions every row-team variant provides.
    const ROW_REDUCTIONS: &[&str] = &["row_sum", "row_max"];

    /// `row_sum` and `row_max` of a [`ROWS_TEAM`] through workgroup memory.
    pub const ROWS_WORKGROUP: Part =
        shader_part!("lib/rows_workgroup.wgsl", ROW_REDUCTIONS, &["row_index"]);

    /// `row_sum` and `row_max` of a [`ROWS_TEAM`] with subgroup operations (needs
    /// `Features::SUBGROUP`).
    pub const ROWS_SUBGROUP: Part =
        shader_part!("lib/rows_subgroup.wgsl", ROW_REDUCTIONS, &["row_index"]);

    /// Row teams of one invocation (`ROW_LANES` = 1): the whole row-team interface,
    /// with no barriers, for CPU adapters.
    pub const ROWS_INVOCATION: Part = shader_part!(
        "lib/rows_invocation.wgsl",
        &["row_index", "row_lane", "row_sum", "row_max"],
        &["workgroup_linear"]
    );

    /// `row_max_sum_exp(lid, base, n)`: a row's maximum and sum of exponentials (of the
    /// module's `x` binding), reduced over its row team: the log-sum-exp of softmax and
    /// the cross-entropy.
    pub const ROW_LOGSUMEXP: Part = shader_part!(
        "lib/row_logsumexp.wgsl",
        &["row_max_sum_exp"],
        &["row_lane", "row_sum", "row_max"]
    );

    /// `accumulated(v, old, accumulate)`: the value a backward kernel stores for a
    /// gradient (`v`, plus `old` when the op's `accumulate` flag is set).
    pub const ACCUMULATE: Part = shader_part!("lib/accumulate.wgsl", &["accumulated"], &[]);

    /// `workgroup_sum(value, lid)`: the f32 sum over a workgroup of `WG_SIZE`
    /// invocations through workgroup memory (a fixed-order tree: deterministic; see
    /// `workgroup_sum_part!`, which also makes the vec4 twin).
    pub const WORKGROUP_SUM: Part =
        super::workgroup_sum_part!("workgroup_sum", "sum_scratch", "f32");

    /// `workgroup_count(value, lid)`: the exact u32 sum over a workgroup (through one
    /// workgroup atomic), for counts past the 2^24 an f32 sum holds exactly.
    pub const WORKGROUP_COUNT: Part =
        shader_part!("lib/workgroup_count.wgsl", &["workgroup_count"], &[]);

    /// Chunked per-tensor totals: `chunk_of(inv)` and `chunk_element(chunk, k, lid)`
    /// place an element of a chunk, `partials_sum` and `partials_count` join a tensor's per-chunk partials
    /// (the module provides `chunk_partial(c)` and `chunk_count()`).
    pub const CHUNK_PARTIALS: Part = shader_part!(
        "lib/chunk_partials.wgsl",
        &[
            "chunk_of",
            "chunk_element",
            "partials_sum",
            "partials_count"
        ],
        &[
            "workgroup_linear",
            "workgroup_sum",
            "workgroup_count",
            "chunk_partial",
            "chunk_count"
        ]
    );

    /// `caution_scale(kept, n, disagree, kind, param)`: the caution mask's rescaling
    /// factor from exact counts, and the `NORM_*` kinds.
    pub const CAUTION_SCALE: Part = shader_part!("lib/caution_scale.wgsl", &["caution_scale"], &[]);

    /// `clip_coefficient(norm, max_norm)`: the factor of global gradient-norm clipping
    /// (torch's `clip_grad_norm_`; 1 when `max_norm` is 0).
    pub const CLIP_COEFFICIENT: Part =
        shader_part!("lib/clip_coefficient.wgsl", &["clip_coefficient"], &[]);

    /// `struct OwnStatus`: the step status of the optimizers with kernels of their
    /// own (Muon, Adafactor), its first words laid out as the engine's, and
    /// `skipping()`, its non-finite flag (the module binds `status: OwnStatus`).
    pub const OWN_STATUS: Part = shader_part!("lib/own_status.wgsl", &["skipping"], &[]);

    /// `line_sum(first, stride, count)`: an ordered chunked sum of the module's
    /// `line_term(at)` along a strided line (needs the generated `SUM_CHUNK`).
    pub const LINE_SUM: Part = shader_part!("lib/line_sum.wgsl", &["line_sum"], &["line_term"]);
}

/// A constant's WGSL type and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConstValue {
    /// `u32`.
    U32(u32),
    /// `i32`.
    I32(i32),
    /// `f32` (written with enough digits to round-trip).
    F32(f32),
    /// `bool`.
    Bool(bool),
}

impl ConstValue {
    fn wgsl(self) -> String {
        match self {
            ConstValue::U32(v) => format!("u32 = {v}u"),
            ConstValue::I32(v) => format!("i32 = {v}i"),
            ConstValue::F32(v) => format!("f32 = {v:?}f"),
            ConstValue::Bool(v) => format!("bool = {v}"),
        }
    }
}

/// `impl From<$ty> for ConstValue` for each WGSL scalar type and its variant.
macro_rules! const_value_from {
    ($($ty:ty => $variant:ident),* $(,)?) => {
        $(impl From<$ty> for ConstValue {
            fn from(v: $ty) -> Self {
                ConstValue::$variant(v)
            }
        })*
    };
}
const_value_from!(u32 => U32, i32 => I32, f32 => F32, bool => Bool);

/// Assembles a WGSL module from generated constants and [`Part`]s.
#[derive(Debug, Clone)]
pub struct ShaderBuilder {
    label: String,
    enables: Vec<&'static str>,
    constants: Vec<(String, ConstValue)>,
    aliases: Vec<(&'static str, &'static str)>,
    declarations: Vec<String>,
    /// Functions the generated declarations define for the parts to call.
    generated: Vec<String>,
    parts: Vec<&'static Part>,
}

impl ShaderBuilder {
    /// An empty module named `label` (shown in wgpu errors and debuggers).
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            enables: Vec::new(),
            constants: Vec::new(),
            aliases: Vec::new(),
            declarations: Vec::new(),
            generated: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// The module's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Adds an `enable` directive (once, however often it is asked for).
    pub fn enable(mut self, extension: &'static str) -> Self {
        if !self.enables.contains(&extension) {
            self.enables.push(extension);
        }
        self
    }

    /// Adds `const NAME: type = value;`.
    pub fn constant(mut self, name: impl Into<String>, value: impl Into<ConstValue>) -> Self {
        self.constants.push((name.into(), value.into()));
        self
    }

    /// Adds `alias NAME = ty;` (a type the parts use, chosen per variant: `f32` or `f16`).
    pub fn alias(mut self, name: &'static str, ty: &'static str) -> Self {
        self.aliases.push((name, ty));
        self
    }

    /// Adds one `const BINDING_<NAME>: u32` per entry: binding indices named once in Rust
    /// and used by the shader as `@binding(BINDING_<NAME>)`.
    pub fn bindings(mut self, table: &[(&str, u32)]) -> Self {
        for (name, index) in table {
            self = self.constant(format!("BINDING_{name}"), *index);
        }
        self
    }

    /// Adds a declaration generated from Rust (a struct, a binding), emitted after the
    /// constants and aliases and before the parts.
    pub fn declare(mut self, wgsl: impl Into<String>) -> Self {
        self.declarations.push(wgsl.into());
        self
    }

    /// Adds a function generated from Rust, `fn name...` in `wgsl`, which parts may
    /// require as if another part provided it.
    pub fn function(mut self, name: impl Into<String>, wgsl: impl Into<String>) -> Self {
        self.generated.push(name.into());
        self.declare(wgsl)
    }

    /// Appends a part.
    pub fn part(mut self, part: &'static Part) -> Self {
        self.parts.push(part);
        self
    }

    /// The WGSL text, after checking that constants are named once, that no part is
    /// given twice, and that every function a part requires is provided by another.
    pub fn build(&self) -> Result<String> {
        let err = |msg: String| Error::Shader(format!("{}: {msg}", self.label));
        for (i, (name, _)) in self.constants.iter().enumerate() {
            if self.constants[..i].iter().any(|(n, _)| n == name) {
                return Err(err(format!("constant `{name}` is set twice")));
            }
        }
        for (i, part) in self.parts.iter().enumerate() {
            if self.parts[..i].iter().any(|p| p.name == part.name) {
                return Err(err(format!("part `{}` is included twice", part.name)));
            }
            for needed in part.requires {
                let generated = self.generated.iter().any(|g| g == needed);
                if !generated && !self.parts.iter().any(|p| p.provides.contains(needed)) {
                    return Err(err(format!(
                        "`{}` calls `{needed}`, which no part provides",
                        part.name
                    )));
                }
            }
        }
        let mut src = String::new();
        for e in &self.enables {
            let _ = writeln!(src, "enable {e};");
        }
        for (name, value) in &self.constants {
            let _ = writeln!(src, "const {name}: {};", value.wgsl());
        }
        for (name, ty) in &self.aliases {
            let _ = writeln!(src, "alias {name} = {ty};");
        }
        for declaration in &self.declarations {
            let _ = writeln!(src, "{declaration}");
        }
        for part in &self.parts {
            let _ = writeln!(src, "\n// ---- {} ----\n{}", part.name, part.source);
        }
        Ok(src)
    }

    /// Builds the text and creates the shader module on `device`.
    pub fn create_module(&self, device: &wgpu::Device) -> Result<wgpu::ShaderModule> {
        let source = self.build()?;
        Ok(device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&self.label),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        }))
    }
}

/// A `#[repr(C)]` Rust struct that is also a WGSL struct, both made by [`wgsl_struct!`]
/// from one field list (the Rust side writes it into buffers, the module
/// [`declare`](ShaderBuilder::declare)s [`WgslStruct::WGSL`]).
pub(crate) trait WgslStruct: bytemuck::Pod {
    /// The struct's name in both languages.
    #[cfg_attr(
        not(feature = "nn"),
        allow(dead_code, reason = "read by the nn kernels' uniform blocks")
    )]
    const NAME: &'static str;
    /// `struct NAME { field: type, ... }` in WGSL.
    const WGSL: &'static str;

    /// The layout of the Rust struct, for the test against naga's layout.
    #[cfg(test)]
    fn mirror() -> MirrorLayout;
}

/// `wgsl_struct! { /// doc  pub(crate) struct Name { /// doc  pub field: u32, ... } }`:
/// a struct defined once for Rust and WGSL. Makes the `#[repr(C)]` Rust struct (with
/// `Default` and `bytemuck::Pod`) and implements [`WgslStruct`] with its WGSL
/// declaration. Fields are `u32`, `i32` or `f32` (4-byte scalars: the two languages
/// lay them out alike), named the same in both.
macro_rules! wgsl_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident: $ty:ident),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $ty),*
        }

        impl $crate::wgsl::WgslStruct for $name {
            const NAME: &'static str = stringify!($name);
            const WGSL: &'static str = concat!(
                "struct ", stringify!($name), " {\n",
                $("    ", stringify!($field), ": ", stringify!($ty), ",\n",)*
                "}\n"
            );

            #[cfg(test)]
            fn mirror() -> $crate::wgsl::MirrorLayout {
                $crate::wgsl::mirror_layout!($name, stringify!($name), [$($field),*])
            }
        }
    };
}
pub(crate) use wgsl_struct;

/// The memory layout of a Rust struct that mirrors a WGSL struct of the same layout
/// (uniforms, tables): checked against naga's layout of every module that declares it.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorLayout {
    /// The WGSL struct's name.
    pub wgsl_name: &'static str,
    /// `size_of` the Rust struct.
    pub size: usize,
    /// Byte offset of each named field (padding fields are left out).
    pub fields: Vec<(&'static str, usize)>,
}

/// `mirror_layout!(RustType, "WgslName", [field, ...])`: the [`MirrorLayout`] of a mirror
/// struct, its fields named as in both languages.
#[cfg(test)]
macro_rules! mirror_layout {
    ($ty:ty, $wgsl:expr, [$($field:ident),* $(,)?]) => {
        $crate::wgsl::MirrorLayout {
            wgsl_name: $wgsl,
            size: ::std::mem::size_of::<$ty>(),
            fields: vec![$((stringify!($field), ::std::mem::offset_of!($ty, $field))),*],
        }
    };
}
#[cfg(test)]
pub(crate) use mirror_layout;

/// Test support: compares mirror structs with naga's layout of a module's source.
#[cfg(test)]
pub(crate) mod layout_check {
    use super::MirrorLayout;

    /// Checks every mirror whose WGSL struct `source` declares; returns how many it found.
    pub fn check_mirrors(label: &str, source: &str, mirrors: &[MirrorLayout]) -> usize {
        let module = naga::front::wgsl::parse_str(source)
            .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(source)));
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).expect("layout");
        let mut found = 0;
        for mirror in mirrors {
            let Some((handle, ty)) = module
                .types
                .iter()
                .find(|(_, t)| t.name.as_deref() == Some(mirror.wgsl_name))
            else {
                continue;
            };
            let naga::TypeInner::Struct { members, span } = &ty.inner else {
                panic!("{label}: `{}` is not a struct", mirror.wgsl_name);
            };
            found += 1;
            assert_eq!(
                mirror.size, *span as usize,
                "{label}: size of `{}` (Rust {} vs WGSL {span})",
                mirror.wgsl_name, mirror.size
            );
            assert_eq!(
                layouter[handle].size, *span,
                "{label}: {}",
                mirror.wgsl_name
            );
            for (name, offset) in &mirror.fields {
                let member = members
                    .iter()
                    .find(|m| m.name.as_deref() == Some(name))
                    .unwrap_or_else(|| {
                        panic!("{label}: `{}` has no field `{name}`", mirror.wgsl_name)
                    });
                assert_eq!(
                    *offset, member.offset as usize,
                    "{label}: offset of `{}.{name}`",
                    mirror.wgsl_name
                );
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static USES_HOOK: Part = Part {
        name: "uses_hook.wgsl",
        source: "fn caller() -> f32 { return hook(); }",
        provides: &["caller"],
        requires: &["hook"],
    };
    static HOOK: Part = Part {
        name: "hook.wgsl",
        source: "fn hook() -> f32 { return SCALE; }",
        provides: &["hook"],
        requires: &[],
    };

    #[test]
    fn constants_come_before_parts_and_enables_first() {
        let src = ShaderBuilder::new("t")
            .constant("SCALE", 2.5f32)
            .enable("f16")
            .enable("f16")
            .bindings(&[("PARAMS", 3)])
            .part(&HOOK)
            .declare("struct Generated { a: u32, }")
            .part(&USES_HOOK)
            .build()
            .unwrap();
        assert!(src.starts_with("enable f16;\nconst SCALE: f32 = 2.5f;\n"));
        let generated = src.find("struct Generated").unwrap();
        assert!(src.find("const BINDING_PARAMS").unwrap() < generated);
        assert!(generated < src.find("fn hook").unwrap());
        assert_eq!(src.matches("enable f16;").count(), 1);
        assert!(src.contains("const BINDING_PARAMS: u32 = 3u;"));
        assert!(src.find("fn hook").unwrap() < src.find("fn caller").unwrap());
    }

    static SUM_KERNEL: Part = Part {
        name: "sum_kernel.wgsl",
        source: "@group(0) @binding(BINDING_DATA) var<storage, read_write> data: array<f32>;\n\
                 @compute @workgroup_size(WG_SIZE)\n\
                 fn total(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,\n\
                          @builtin(local_invocation_index) lid: u32) {\n\
                     let i = workgroup_linear(wg, nwg) * WG_SIZE + lid;\n\
                     let s = workgroup_sum(data[i], lid);\n\
                     if lid == 0u { data[i] = s; }\n\
                 }",
        provides: &[],
        requires: &["workgroup_linear", "workgroup_sum"],
    };

    /// The module of `src`, parsed and validated by naga.
    fn validated(src: &str) -> naga::Module {
        let module = naga::front::wgsl::parse_str(src).unwrap();
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .unwrap();
        module
    }

    #[test]
    fn generated_constants_drive_bindings_and_workgroup_size() {
        let src = ShaderBuilder::new("t")
            .constant("WG_SIZE", 64u32)
            .bindings(&[("DATA", 3)])
            .part(&lib::GRID)
            .part(&lib::WORKGROUP_SUM)
            .part(&SUM_KERNEL)
            .build()
            .unwrap();
        let module = validated(&src);
        let (_, data) = module
            .global_variables
            .iter()
            .find(|(_, v)| v.name.as_deref() == Some("data"))
            .unwrap();
        assert_eq!(data.binding.as_ref().unwrap().binding, 3);
        assert_eq!(module.entry_points[0].workgroup_size, [64, 1, 1]);
    }

    /// The vec4 sum is the f32 one with its own type, scratch and name, and both are
    /// valid WGSL in one module.
    #[test]
    fn workgroup_sums_are_one_definition_per_type() {
        const SUM4: Part = workgroup_sum_part!("workgroup_sum4", "sum4_scratch", "vec4<f32>");
        let sum = lib::WORKGROUP_SUM.source;
        assert!(sum.contains("var<workgroup> sum_scratch: array<f32, WG_SIZE>;\n"));
        assert!(sum.contains("fn workgroup_sum(value: f32, lid: u32) -> f32 {\n"));
        assert!(
            SUM4.source
                .contains("fn workgroup_sum4(value: vec4<f32>, lid: u32) -> vec4<f32> {")
        );
        assert!(
            SUM4.source
                .contains("sum4_scratch[lid] += sum4_scratch[lid + stride];\n")
        );
        assert_eq!(SUM4.provides, ["workgroup_sum4"]);
        let generic = |src: &str, name: &str, scratch: &str, ty: &str| {
            src.replace(scratch, "SCRATCH")
                .replace(name, "NAME")
                .replace(ty, "TYPE")
        };
        assert_eq!(
            generic(sum, "workgroup_sum", "sum_scratch", "f32"),
            generic(SUM4.source, "workgroup_sum4", "sum4_scratch", "vec4<f32>")
        );
        let src = ShaderBuilder::new("t")
            .constant("WG_SIZE", 64u32)
            .part(&lib::WORKGROUP_SUM)
            .part(&SUM4)
            .build()
            .unwrap();
        validated(&src);
    }

    /// A missing hook, a constant set twice and a part included twice are errors
    /// that name the culprit.
    #[test]
    fn inconsistent_modules_are_errors() {
        let t = || ShaderBuilder::new("t");
        for (builder, culprit) in [
            (t().part(&USES_HOOK), "`hook`"),
            (t().constant("A", 1u32).constant("A", 2u32), "`A`"),
            (t().part(&HOOK).part(&HOOK), "hook.wgsl"),
        ] {
            let e = builder.build().unwrap_err();
            assert!(e.to_string().contains(culprit), "{e}");
        }
    }
}
