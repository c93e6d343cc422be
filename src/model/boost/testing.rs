//! Test helpers: hand-built boosted trees and a small seeded generator.

use super::BoostNode;
use crate::model::tree::LEAF;

/// An internal node testing `x[feature] <= threshold`.
pub(crate) fn node(feature: u32, threshold: f64, left: u32, right: u32, cover: f64) -> BoostNode {
    BoostNode {
        feature,
        threshold,
        left,
        right,
        value: 0.0,
        cover,
    }
}

/// A leaf with margin `value`.
pub(crate) fn leaf(value: f64, cover: f64) -> BoostNode {
    BoostNode {
        feature: 0,
        threshold: 0.0,
        left: LEAF,
        right: LEAF,
        value,
        cover,
    }
}

/// A xorshift generator: the same numbers for the same seed.
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
