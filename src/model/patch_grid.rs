//! [`PatchGrid`]: a square image cut into square patches, the geometry that the ViT,
//! the MAE and the MAE's reconstructions share.

/// A square image of `channels` planes (`[channels, image_size, image_size]`,
/// row-major) cut into `patch x patch` patches, numbered row-major over the grid; a
/// patch's values in (channel, row, column) order, as
/// [`GraphBuilder::patchify`](crate::nn::GraphBuilder::patchify) cuts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PatchGrid {
    /// Input channels.
    pub channels: usize,
    /// Image height and width (square).
    pub image_size: usize,
    /// Patch height and width; divides `image_size`.
    pub patch: usize,
}

impl PatchGrid {
    /// 28x28 digits of one channel in 7x7 patches (16 patches).
    pub const DIGITS: Self = Self {
        channels: 1,
        image_size: 28,
        patch: 7,
    };

    /// Patches along each side of the image.
    pub fn side(&self) -> usize {
        self.image_size / self.patch.max(1)
    }

    /// Patches per image.
    pub fn num_patches(&self) -> usize {
        self.side().pow(2)
    }

    /// Values per patch (`channels * patch^2`).
    pub fn patch_len(&self) -> usize {
        self.channels * self.patch * self.patch
    }

    /// The shape of one image, `[channels, image_size, image_size]`.
    pub fn sample_shape(&self) -> Vec<usize> {
        vec![self.channels, self.image_size, self.image_size]
    }

    /// Values per image.
    pub fn sample_len(&self) -> usize {
        self.channels * self.image_size * self.image_size
    }

    /// The grid row and column of patch `n`.
    pub fn position(&self, n: usize) -> (usize, usize) {
        (n / self.side(), n % self.side())
    }

    /// Where value `i` of patch `n` lies in its image (an index below
    /// [`PatchGrid::sample_len`]).
    pub fn pixel(&self, n: usize, i: usize) -> usize {
        let (p, s) = (self.patch, self.image_size);
        let (row, col) = self.position(n);
        let (c, y, x) = (i / (p * p), i / p % p, i % p);
        (c * s + row * p + y) * s + col * p + x
    }

    /// The patch that holds value `pixel` of an image.
    pub fn patch_of(&self, pixel: usize) -> usize {
        let s = self.image_size;
        let (y, x) = (pixel / s % s, pixel % s);
        (y / self.patch) * self.side() + x / self.patch
    }

    /// What makes the grid unusable (a zero size, a patch that does not divide the
    /// image), if anything.
    pub(crate) fn problem(&self) -> Option<String> {
        if self.channels == 0 || self.image_size == 0 || self.patch == 0 {
            return Some("the channels, the image size and the patch must be positive".into());
        }
        (!self.image_size.is_multiple_of(self.patch)).then(|| {
            format!(
                "the patch {} does not divide the image size {}",
                self.patch, self.image_size
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `pixel` and `patch_of` agree with the f64 reference's patchify on a grid of
    /// several channels: value `i` of patch `n` is the image element that patchify puts
    /// there, and that element lies in patch `n`.
    #[test]
    fn pixel_and_patch_of_follow_patchify() {
        let grid = PatchGrid {
            channels: 3,
            image_size: 6,
            patch: 2,
        };
        let image: Vec<f64> = (0..grid.sample_len()).map(|v| v as f64).collect();
        let shape = [1, grid.channels, grid.image_size, grid.image_size];
        let patches = crate::nn::reference::patchify(&image, shape, grid.patch);
        assert_eq!(patches.len(), grid.num_patches() * grid.patch_len());
        for (k, &v) in patches.iter().enumerate() {
            let (n, i) = (k / grid.patch_len(), k % grid.patch_len());
            assert_eq!(grid.pixel(n, i), v as usize, "patch {n}, value {i}");
            assert_eq!(grid.patch_of(v as usize), n, "pixel {v}");
        }
    }

    #[test]
    fn problems_are_named() {
        let ok = PatchGrid::DIGITS;
        assert_eq!(ok.problem(), None);
        assert_eq!((ok.side(), ok.num_patches(), ok.patch_len()), (4, 16, 49));
        let uneven = PatchGrid { patch: 5, ..ok };
        assert!(uneven.problem().unwrap().contains("does not divide"));
        let empty = PatchGrid { channels: 0, ..ok };
        assert!(empty.problem().unwrap().contains("positive"));
    }
}
