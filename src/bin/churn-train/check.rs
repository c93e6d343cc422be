//! `churn-train check`: validate a playbook while editing it, exactly as training and loading
//! do, against a trained model's inputs or the inputs a config's data would give.

use churn::cli::DataArgs;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Playbook file to check.
    #[arg(long, value_name = "FILE")]
    playbook: PathBuf,
    /// A trained model (directory or model.bin): check against its inputs.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "data"])]
    model: Option<PathBuf>,
    /// The data the playbook is for (`--config FILE`, or `--data FILE --label COL …`): check
    /// against the inputs a model of it would have, before any training.
    #[command(flatten)]
    data: DataArgs,
}

/// Run `churn-train check`.
pub fn run(a: &CheckArgs) -> anyhow::Result<()> {
    let file = churn::playbook::read(&a.playbook)?;
    let source = a.playbook.display().to_string();
    let encoder = match &a.model {
        Some(m) => churn::bundle::load(m)?.bundle.encoder,
        None if a.data.is_empty() => {
            return Err(churn::cli::CliError::Usage(
                "give --model DIR, or the data the playbook is for (--config FILE, or --data FILE --label COL)".into(),
            )
            .into())
        }
        None => {
            let (cfg, source) = a.data.resolve()?;
            let data = churn::ingest::load(&source)?;
            let rows: Vec<usize> = (0..data.label.len()).collect();
            churn::features::Encoder::fit(&data, &rows, cfg.model.min_count)
        }
    };
    let pb = churn::playbook::Playbook::compile(file, &encoder, &source)?;
    println!(
        "{source}: ok — {} actions, {} rules, customer value {}, actionable: {}",
        pb.file.actions.len(),
        pb.file.rules.len(),
        pb.file.value.expression.as_deref().unwrap_or("a constant"),
        if pb.file.actionable.is_empty() {
            "none".to_string()
        } else {
            pb.file.actionable.join(", ")
        }
    );
    Ok(())
}
