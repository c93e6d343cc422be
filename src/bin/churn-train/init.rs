//! `churn-train init`: a commented `churn.toml` and `playbook.toml` for a customer table the
//! service has not seen, and what was decided about each column and why.

use anyhow::Context;
use churn::ingest::CustomerTableSpec;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct InitArgs {
    /// Customer table (CSV, CSV.gz, TSV or Parquet): one row per customer with a churn label.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// Label column (default: the one two-valued column named like churn, exited, attrition…).
    #[arg(long, value_name = "COL")]
    label: Option<String>,
    /// Directory for churn.toml and playbook.toml (created if needed).
    #[arg(long, value_name = "DIR", default_value = ".")]
    out: PathBuf,
    /// Model name (default: the data file's name without extension).
    #[arg(long)]
    name: Option<String>,
    /// Replace churn.toml and playbook.toml when they exist.
    #[arg(long)]
    force: bool,
}

/// Run `churn-train init`.
pub fn run(a: &InitArgs) -> anyhow::Result<()> {
    let config_path = a.out.join("churn.toml");
    let playbook_path = a.out.join("playbook.toml");
    for p in [&config_path, &playbook_path] {
        if p.exists() && !a.force {
            return Err(churn::cli::CliError::Usage(format!(
                "{} exists; pass --force to replace it",
                p.display()
            ))
            .into());
        }
    }
    let raw = churn::io::read_table(&a.data, None)?;
    let roles = churn::init::infer_roles(&raw, a.label.as_deref())?;
    let spec = CustomerTableSpec {
        path: a.data.clone(),
        label: roles.label.clone(),
        id: roles.id.clone(),
        drop: roles
            .personal
            .iter()
            .map(|(c, _)| c.clone())
            .chain(roles.drop.iter().cloned())
            .collect(),
        ..Default::default()
    };
    let data = churn::ingest::load_customer_table(raw, &spec)?;
    let name = match &a.name {
        Some(n) => n.clone(),
        None => model_name(&a.data),
    };
    let rows: Vec<usize> = (0..data.label.len()).collect();
    let min_count = churn::config::ModelConfig::default().min_count;
    let inferred = churn::init::infer_playbook(&data, &rows, min_count, &name);
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("{}: cannot create", a.out.display()))?;
    let config = churn::init::write_config(
        &name,
        &roles,
        &data.positive_value,
        &a.data,
        &a.out,
        inferred.revenue.as_deref(),
    );
    let playbook = churn::init::write_playbook(&inferred.file, &inferred.decisions);
    churn::util::write_atomic(&playbook_path, playbook.as_bytes())
        .with_context(|| format!("{}: cannot write", playbook_path.display()))?;
    churn::util::write_atomic(&config_path, config.as_bytes())
        .with_context(|| format!("{}: cannot write", config_path.display()))?;
    let churners = data.label.iter().filter(|&&y| y).count();
    println!(
        "{}: {} rows, label '{}' (churn = '{}', {:.1}% churn)",
        a.data.display(),
        data.label.len(),
        data.label_column,
        data.positive_value,
        100.0 * churners as f64 / data.label.len().max(1) as f64
    );
    for d in roles.decisions.iter().chain(&inferred.decisions) {
        println!("  {d}");
    }
    println!(
        "wrote {} and {}\ntrain with: churn-train --config {}",
        config_path.display(),
        playbook_path.display(),
        config_path.display()
    );
    Ok(())
}

/// The data file's name without its extensions (`bank.csv.gz` → `bank`).
fn model_name(path: &std::path::Path) -> String {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = file.split('.').next().unwrap_or("").to_string();
    if stem.is_empty() {
        "model".into()
    } else {
        stem
    }
}
