//! k-means fit timing for the sklearn peer (`benches/peers/kmeans_sklearn.py`): reads a raw
//! little-endian f64 matrix (`n × d`, row-major), fits `segment::kmeans` (linfa-clustering,
//! k-means++, one run) and prints one JSON line with the fit time and the SSE.
//!
//! Run: `cargo run --release --example kmeans_fit -- FILE N D K`

use churn::segment::{kmeans, SegmentConfig};
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 4 {
        eprintln!("usage: kmeans_fit FILE N D K");
        std::process::exit(2);
    }
    let bytes = std::fs::read(&a[0]).expect("data file");
    let n: usize = a[1].parse().expect("N");
    let d: usize = a[2].parse().expect("D");
    let k: usize = a[3].parse().expect("K");
    assert_eq!(bytes.len(), n * d * 8, "file size does not match N × D f64");
    let data: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    let cfg = SegmentConfig {
        n_runs: 1,
        max_iterations: 300,
        tolerance: 1e-4,
        ..SegmentConfig::default()
    };
    let t = Instant::now();
    let c = kmeans(&data, d, k, &cfg, 0).expect("k-means");
    let secs = t.elapsed().as_secs_f64();
    let sse: f64 = data
        .chunks_exact(d)
        .map(|p| {
            c.iter()
                .map(|m| m.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum::<f64>())
                .fold(f64::INFINITY, f64::min)
        })
        .sum();
    println!("{{\"fit_seconds\":{secs:.4},\"sse\":{sse:.6}}}");
}
