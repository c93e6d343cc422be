//! Readable segment names from centroids ("recent · frequent · high spend"), unique within a
//! model, and each centroid's RFM class.

use super::model::SegmentInfo;
use super::rfm::{RfmClass, RfmRule};
use super::scale::ScaledFeature;
use super::RfmConfig;

/// Fresh segments for `centroids`: ids `0..k`, names from [`name_centroids`], and the RFM class
/// of each centroid when an RFM rule exists.
pub(super) fn segments(
    rfm_cfg: &RfmConfig,
    features: &[ScaledFeature],
    centroids: &[Vec<f64>],
    rfm: Option<&RfmRule>,
) -> Vec<SegmentInfo> {
    let fresh_names = name_centroids(features, centroids);
    centroids
        .iter()
        .enumerate()
        .map(|(i, c)| SegmentInfo {
            id: i as u32,
            name: fresh_names[i].clone(),
            rfm_class: centroid_class(rfm_cfg, features, c, rfm),
        })
        .collect()
}

/// RFM class of a centroid (scaled space), in raw units; `None` without an RFM rule or when R, F
/// or M is not a clustering feature.
fn centroid_class(
    rfm_cfg: &RfmConfig,
    features: &[ScaledFeature],
    c: &[f64],
    rfm: Option<&RfmRule>,
) -> Option<RfmClass> {
    rfm.and_then(|r| {
        let raw = |name: &str| {
            features
                .iter()
                .position(|f| f.name == name)
                .map(|i| features[i].unscale(c[i]))
        };
        Some(r.classify_values(
            raw(&rfm_cfg.recency)?,
            raw(&rfm_cfg.frequency)?,
            raw(&rfm_cfg.monetary)?,
        ))
    })
}

/// Word for a feature being above (`z > 0`) or below the population mean.
fn describe(name: &str, z: f64) -> String {
    let hi = z > 0.0;
    let pick = |a: &str, b: &str| if hi { a.to_string() } else { b.to_string() };
    match name {
        "recency_days" => pick("lapsed", "recent"),
        "frequency" => pick("frequent", "infrequent"),
        "monetary_total" => pick("high spend", "low spend"),
        "monetary_mean" => pick("large baskets", "small baskets"),
        "tenure_days" | "tenure" => pick("long tenure", "short tenure"),
        "frequency_trend" => pick("rising", "declining"),
        "active_months" => pick("regular", "sporadic"),
        other => format!("{} {other}", if hi { "high" } else { "low" }),
    }
}

/// The words for features `idx` of centroid `c`, joined with " · ".
fn describe_all(idx: &[usize], features: &[ScaledFeature], c: &[f64]) -> String {
    idx.iter()
        .map(|&i| describe(&features[i].name, c[i]))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// `name`, or `name #2`, `name #3`, … — the first not in `taken`.
pub(super) fn unique_name(name: String, taken: &[String]) -> String {
    let mut name = name;
    let base = name.clone();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base} #{n}");
        n += 1;
    }
    name
}

/// Readable names from centroids (scaled space: 0 = population mean), unique within the model.
pub fn name_centroids(features: &[ScaledFeature], centroids: &[Vec<f64>]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for c in centroids {
        let mut order: Vec<usize> = (0..features.len()).collect();
        order.sort_by(|&a, &b| c[b].abs().total_cmp(&c[a].abs()).then(a.cmp(&b)));
        // features at least a quarter standard deviation from the population mean; a big cluster
        // sits near the mean, so fall back to its single most distinctive feature
        let mut strong: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| c[i].abs() >= 0.25)
            .collect();
        if strong.is_empty() && c.get(order[0]).is_some_and(|v| v.abs() >= 0.05) {
            strong.push(order[0]);
        }
        let mut take = strong.len().min(3);
        let mut name = if take == 0 {
            "average".to_string()
        } else {
            describe_all(&strong[..take], features, c)
        };
        // make unique: add the next most distinctive feature, then a counter
        while names.contains(&name) && take < order.len() {
            take += 1;
            name = describe_all(&order[..take], features, c);
        }
        let name = unique_name(name, &names);
        names.push(name);
    }
    names
}
