//! How element-wise kernels walk memory, chosen from the adapter.
//!
//! A streaming kernel (the copy yardstick, the optimizer's passes) hands each
//! workgroup a block of `WG_SIZE * VEC_PER_THREAD` vec4s. [`AccessPattern`] says
//! which vec4s of the block one invocation touches: on GPUs, neighbouring invocations
//! must touch neighbouring vec4s (coalesced loads); on CPU adapters (llvmpipe,
//! SwiftShader), which run invocations in SIMD lanes one workgroup per thread, each
//! invocation is better off streaming through a contiguous run of its own.
//!
//! Kernels receive their specialization as `const` declarations generated here
//! ([`WgslConsts`]) and prepended to a WGSL file that does not declare them.

use std::fmt::Write as _;

/// Which vec4s of a workgroup's block invocation `lid` handles on its `k`-th load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessPattern {
    /// `k * WG_SIZE + lid`: neighbouring invocations read neighbouring vec4s
    /// (coalesced on GPUs).
    Strided,
    /// `lid * VEC_PER_THREAD + k`: each invocation reads a contiguous run of
    /// `VEC_PER_THREAD` vec4s.
    Contiguous,
}

impl AccessPattern {
    /// The pattern for an adapter of this type: [`AccessPattern::Contiguous`] on CPU
    /// adapters, [`AccessPattern::Strided`] everywhere else.
    pub fn for_device_type(device_type: wgpu::DeviceType) -> Self {
        match device_type {
            wgpu::DeviceType::Cpu => AccessPattern::Contiguous,
            _ => AccessPattern::Strided,
        }
    }

    /// Name in reports (`strided`, `contiguous`).
    pub fn name(self) -> &'static str {
        match self {
            AccessPattern::Strided => "strided",
            AccessPattern::Contiguous => "contiguous",
        }
    }

    /// Both patterns.
    pub const ALL: [AccessPattern; 2] = [AccessPattern::Strided, AccessPattern::Contiguous];
}

/// WGSL `const` declarations, one per line, to prepend to a shader file that uses
/// but does not declare them.
///
/// ```
/// use coptim::access::WgslConsts;
/// let src = WgslConsts::new().u32("WG_SIZE", 256).bool("CONTIGUOUS", true).prepend_to("// body");
/// assert_eq!(src, "const WG_SIZE: u32 = 256u;\nconst CONTIGUOUS: bool = true;\n// body");
/// ```
#[derive(Debug, Clone, Default)]
pub struct WgslConsts {
    lines: String,
}

impl WgslConsts {
    /// No declarations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `const NAME: u32 = VALUEu;`.
    pub fn u32(mut self, name: &str, value: u32) -> Self {
        writeln!(self.lines, "const {name}: u32 = {value}u;").expect("String writes");
        self
    }

    /// Adds `const NAME: bool = VALUE;`.
    pub fn bool(mut self, name: &str, value: bool) -> Self {
        writeln!(self.lines, "const {name}: bool = {value};").expect("String writes");
        self
    }

    /// The declarations followed by `source`.
    pub fn prepend_to(&self, source: &str) -> String {
        format!("{}{source}", self.lines)
    }
}

#[cfg(test)]
mod tests {
    use super::AccessPattern;

    #[test]
    fn cpu_adapters_get_contiguous_runs_and_gpus_strided() {
        assert_eq!(
            AccessPattern::for_device_type(wgpu::DeviceType::Cpu),
            AccessPattern::Contiguous
        );
        for t in [
            wgpu::DeviceType::DiscreteGpu,
            wgpu::DeviceType::IntegratedGpu,
            wgpu::DeviceType::VirtualGpu,
            wgpu::DeviceType::Other,
        ] {
            assert_eq!(AccessPattern::for_device_type(t), AccessPattern::Strided);
        }
    }
}
