//! Native memcpy: the machine's own memory bandwidth, measured in the same run as the
//! adapter's kernels.
//!
//! [`NativeCopy`] copies one host buffer into another with `copy_from_slice`, on one
//! thread or split evenly across several (`std::thread::scope`), the way a native
//! optimizer (PyTorch's `copy_`) would stream the same bytes.

use std::time::Instant;

use serde::Serialize;

use super::timer::median;

/// Thread counts the native copy is timed with.
pub const NATIVE_THREADS: [usize; 2] = [1, 2];

/// A host-side copy of `len` f32 elements.
#[derive(Debug)]
pub struct NativeCopy {
    src: Vec<f32>,
    dst: Vec<f32>,
}

impl NativeCopy {
    /// Allocates and touches source and destination (so page faults are not timed).
    pub fn new(len: u64) -> Self {
        let len = len as usize;
        Self {
            src: (0..len).map(|i| i as f32).collect(),
            dst: vec![1.0; len],
        }
    }

    /// Bytes one copy moves: every element read once and written once.
    pub fn bytes(&self) -> u64 {
        self.src.len() as u64 * 8
    }

    /// Copies once, split across `threads` threads, and returns the time in ms.
    pub fn time_once(&mut self, threads: usize) -> f64 {
        let threads = threads.max(1);
        let part = self.src.len().div_ceil(threads).max(1);
        let t0 = Instant::now();
        if threads == 1 {
            self.dst.copy_from_slice(&self.src);
        } else {
            std::thread::scope(|s| {
                for (d, src) in self.dst.chunks_mut(part).zip(self.src.chunks(part)) {
                    s.spawn(move || d.copy_from_slice(src));
                }
            });
        }
        t0.elapsed().as_secs_f64() * 1e3
    }

    /// `samples` timed copies on `threads` threads after one untimed one.
    pub fn samples(&mut self, threads: usize, samples: u32) -> Vec<f64> {
        self.time_once(threads);
        (0..samples).map(|_| self.time_once(threads)).collect()
    }

    /// Whether the last copy left the destination equal to the source.
    pub fn copied(&self) -> bool {
        self.src == self.dst
    }
}

/// The native copy at one model size and thread count.
#[derive(Debug, Clone, Serialize)]
pub struct NativeResult {
    /// The model size this copy stands for.
    pub params: u64,
    /// Threads the copy was split across.
    pub threads: usize,
    /// Bytes one copy moves (read + write).
    pub bytes: u64,
    /// Median time of one copy.
    pub ms: f64,
    /// Fastest copy, for a feel of the noise.
    pub min_ms: f64,
    /// Achieved bandwidth, read and write counted.
    pub gbps: f64,
}

impl NativeResult {
    /// Summarizes `samples` (ms) of a copy of `bytes`.
    pub fn new(params: u64, threads: usize, bytes: u64, samples: &[f64]) -> Self {
        let ms = median(samples);
        Self {
            params,
            threads,
            bytes,
            ms,
            min_ms: samples.iter().copied().fold(f64::INFINITY, f64::min),
            gbps: bytes as f64 / (ms * 1e6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NativeCopy;

    #[test]
    fn split_copies_every_element() {
        for threads in [1, 2, 3] {
            let mut c = NativeCopy::new(1001);
            assert!(!c.copied());
            assert!(c.time_once(threads) >= 0.0);
            assert!(c.copied(), "{threads} threads");
            assert_eq!(c.bytes(), 8008);
        }
    }
}
