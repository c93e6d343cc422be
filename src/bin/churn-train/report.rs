//! `churn-train report`: re-render a trained model's HTML report.

use anyhow::Context;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Model directory (holding model.bin and model_card.json).
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Output file (default: DIR/report.html).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Run `churn-train report`.
pub fn run(a: ReportArgs) -> anyhow::Result<()> {
    let model = &a.model;
    let html = churn::report::render_dir(model)?;
    // a registry's report is its served version's
    let model = &churn::bundle::registry::resolve_path(model)?;
    let dir = if model.is_dir() {
        model.to_path_buf()
    } else {
        model.parent().map(PathBuf::from).unwrap_or_default()
    };
    let out = a
        .output
        .unwrap_or_else(|| dir.join(churn::report::REPORT_FILE));
    churn::util::write_atomic(&out, html.as_bytes())
        .with_context(|| format!("{}: cannot write", out.display()))?;
    eprintln!("wrote {} ({} KB)", out.display(), html.len() / 1024);
    Ok(())
}
