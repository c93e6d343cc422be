//! `churn-score`: batch-score a file of customers with a trained bundle.

use churn::bundle;
use churn::cli;
use churn::io::{read_table, write_table, OutData};
use churn::scoring::Scorer;
use clap::Parser;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "churn-score",
    version,
    about = "Score a CSV / Parquet file of customers with a trained churn model"
)]
struct Args {
    /// Model directory (holding model.bin) or the model.bin file.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Customers to score, in the training layout (CSV, CSV.gz, TSV or Parquet).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Output file (CSV, TSV or Parquet by extension).
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
    /// Write bad rows to a reject file instead of stopping.
    #[arg(long)]
    skip_invalid: bool,
    /// Reject file (default: OUTPUT's name with `.rejects.csv`).
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Rows per chunk.
    #[arg(long, default_value_t = 8192)]
    chunk_size: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Retention playbook overriding the one stored in the bundle.
    #[arg(long, value_name = "FILE")]
    playbook: Option<PathBuf>,
    /// Print only errors.
    #[arg(long)]
    quiet: bool,
}

fn main() {
    let args = Args::parse();
    cli::init_logging(args.quiet, false);
    if let Err(e) = run(&args) {
        std::process::exit(cli::report(&e));
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let mut scorer = Scorer::new(bundle::load(&args.model)?);
    if let Some(p) = &args.playbook {
        scorer.set_playbook(churn::playbook::read(p)?, &p.display().to_string())?;
    }
    let table = read_table(&args.input, None)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let results = scorer.score_table(&table, threads, args.chunk_size)?;
    let mut good = Vec::with_capacity(results.len());
    let mut bad = Vec::new();
    for (row, r) in results.into_iter().enumerate() {
        match r {
            Ok(s) => good.push((row, s)),
            Err(e) if args.skip_invalid => bad.push((row, e)),
            Err(e) => return Err(e.into()),
        }
    }
    let mut cols: Vec<(String, OutData)> = Vec::new();
    if let Some(idcol) = &scorer.bundle.id_column {
        if let Some(ci) = table.index_of(idcol) {
            let c = &table.columns[ci].data;
            cols.push((
                idcol.clone(),
                OutData::Text(good.iter().map(|(r, _)| c.get(*r).to_text()).collect()),
            ));
        }
    }
    let f = |g: fn(&churn::scoring::Scored) -> f64| {
        OutData::Float(good.iter().map(|(_, s)| Some(g(s))).collect())
    };
    cols.push(("churn_probability".into(), f(|s| s.prediction.probability)));
    cols.push(("probability_low".into(), f(|s| s.prediction.low)));
    cols.push(("probability_high".into(), f(|s| s.prediction.high)));
    cols.push((
        "leaf_support".into(),
        OutData::Int(
            good.iter()
                .map(|(_, s)| Some(s.prediction.support as i64))
                .collect(),
        ),
    ));
    cols.push((
        "predicted_churn".into(),
        OutData::Bool(good.iter().map(|(_, s)| s.prediction.churn).collect()),
    ));
    if let Some(sm) = &scorer.bundle.segments {
        let seg = |f: fn(&churn::segment::Assignment) -> Option<String>| {
            OutData::Text(
                good.iter()
                    .map(|(_, s)| s.segment.as_ref().and_then(f))
                    .collect(),
            )
        };
        cols.push((
            "segment_id".into(),
            OutData::Int(
                good.iter()
                    .map(|(_, s)| s.segment.as_ref().map(|a| a.segment_id as i64))
                    .collect(),
            ),
        ));
        cols.push(("segment".into(), seg(|a| Some(a.segment.clone()))));
        if sm.rfm.is_some() {
            cols.push(("rfm_class".into(), seg(|a| a.rfm_class.map(String::from))));
        }
        if sm.lifecycle.is_some() {
            cols.push((
                "lifecycle_stage".into(),
                seg(|a| a.lifecycle_stage.map(String::from)),
            ));
        }
    }
    if scorer.bundle.playbook.is_some() {
        let adv = |f: fn(&churn::playbook::Advice) -> Option<String>| {
            OutData::Text(
                good.iter()
                    .map(|(_, s)| s.advice.as_ref().and_then(f))
                    .collect(),
            )
        };
        cols.push(("risk_band".into(), adv(|a| Some(a.risk_band.to_string()))));
        cols.push((
            "top_action".into(),
            adv(|a| a.recommendations.first().map(|r| r.action.to_string())),
        ));
        cols.push((
            "expected_value".into(),
            OutData::Float(
                good.iter()
                    .map(|(_, s)| {
                        s.advice
                            .as_ref()
                            .and_then(|a| a.recommendations.first().map(|r| r.expected_value))
                    })
                    .collect(),
            ),
        ));
        cols.push(("treatment".into(), adv(|a| Some(a.treatment.to_string()))));
    }
    cols.push((
        "warnings".into(),
        OutData::Text(
            good.iter()
                .map(|(_, s)| {
                    Some(
                        s.warnings
                            .iter()
                            .map(|w| w.to_string())
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                })
                .collect(),
        ),
    ));
    write_table(&args.output, cols)?;
    if !bad.is_empty() {
        let path = args
            .rejects
            .clone()
            .unwrap_or_else(|| churn::util::sibling_path(&args.output, "rejects.csv"));
        let mut rcols: Vec<(String, OutData)> = vec![
            (
                "row".into(),
                OutData::Int(bad.iter().map(|(r, _)| Some(*r as i64 + 1)).collect()),
            ),
            (
                "error".into(),
                OutData::Text(bad.iter().map(|(_, e)| Some(inner(e))).collect()),
            ),
        ];
        for c in &table.columns {
            rcols.push((
                c.name.clone(),
                OutData::Text(bad.iter().map(|(r, _)| c.data.get(*r).to_text()).collect()),
            ));
        }
        write_table(&path, rcols)?;
        eprintln!(
            "{} of {} rows rejected; written to {}",
            bad.len(),
            table.nrows,
            path.display()
        );
    }
    if !args.quiet {
        let flagged = good.iter().filter(|(_, s)| s.prediction.churn).count();
        let warned = good.iter().filter(|(_, s)| !s.warnings.is_empty()).count();
        eprintln!(
            "scored {} customers with model '{}' version {}: {} flagged as likely to churn, {} with warnings; wrote {}",
            good.len(),
            scorer.bundle.name,
            scorer.version,
            flagged,
            warned,
            args.output.display()
        );
    }
    Ok(())
}

fn inner(e: &churn::scoring::ScoreError) -> String {
    match e {
        churn::scoring::ScoreError::BadRow { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}
