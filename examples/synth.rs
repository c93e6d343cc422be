//! Write a deterministic synthetic churn table (CSV or Parquet by extension) for benchmarks and
//! peer scripts: `cargo run --release --example synth -- --rows 1000000 --output /tmp/synth.parquet`.
//! Schema: see `churn::synth`.

use anyhow::Context;
use churn::synth::{generate, SynthSpec};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Rows (customers).
    #[arg(long, default_value_t = 100_000)]
    rows: usize,
    /// Numeric feature columns.
    #[arg(long, default_value_t = 16)]
    numeric: usize,
    /// Categorical feature columns (0–4).
    #[arg(long, default_value_t = 4)]
    categorical: usize,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output file (.csv or .parquet).
    #[arg(long)]
    output: std::path::PathBuf,
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let spec = SynthSpec {
        rows: a.rows,
        numeric: a.numeric,
        categorical: a.categorical,
        seed: a.seed,
    };
    let cols = generate(&spec);
    churn::io::write_table(&a.output, cols)
        .with_context(|| format!("writing {}", a.output.display()))?;
    eprintln!("wrote {} rows to {}", a.rows, a.output.display());
    Ok(())
}
