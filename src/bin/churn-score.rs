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
    let id_col = scorer
        .bundle
        .id_column
        .as_deref()
        .and_then(|c| table.index_of(c));
    // Each scored row shrinks to the output cells on the worker thread; text borrows from the
    // table and the bundle.
    let results = scorer.score_table(&table, threads, args.chunk_size, |r, res| {
        res.map(|s| OutRow {
            id: id_col.and_then(|c| table.columns[c].data.get(r).text()),
            p: s.prediction.probability,
            low: s.prediction.low,
            high: s.prediction.high,
            support: s.prediction.support as i64,
            churn: s.prediction.churn,
            segment_id: s.segment.as_ref().map(|a| a.segment_id as i64),
            segment: s.segment.as_ref().map(|a| a.segment),
            rfm: s.segment.as_ref().and_then(|a| a.rfm_class),
            lifecycle: s.segment.as_ref().and_then(|a| a.lifecycle_stage),
            band: s.advice.as_ref().map(|a| a.risk_band),
            action: s
                .advice
                .as_ref()
                .and_then(|a| a.recommendations.first().map(|r| r.action)),
            ev: s
                .advice
                .as_ref()
                .and_then(|a| a.recommendations.first().map(|r| r.expected_value)),
            treatment: s.advice.as_ref().map(|a| a.treatment),
            warnings: (!s.warnings.is_empty()).then(|| {
                s.warnings
                    .iter()
                    .map(|w| w.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            }),
        })
        .map_err(|e| (r, e))
    })?;
    let mut good: Vec<OutRow> = Vec::with_capacity(results.len());
    let mut bad = Vec::new();
    for r in results {
        match r {
            Ok(o) => good.push(o),
            Err((row, e)) if args.skip_invalid => bad.push((row, e)),
            Err((_, e)) => return Err(e.into()),
        }
    }
    let mut cols: Vec<(String, OutData)> = Vec::new();
    if let (Some(idcol), Some(_)) = (&scorer.bundle.id_column, id_col) {
        cols.push((
            idcol.clone(),
            OutData::Str(good.iter().map(|o| o.id.as_deref()).collect()),
        ));
    }
    let f = |g: fn(&OutRow) -> f64| OutData::Float(good.iter().map(|o| Some(g(o))).collect());
    let s = |g: for<'r> fn(&'r OutRow<'_>) -> Option<&'r str>| {
        OutData::Str(good.iter().map(g).collect())
    };
    cols.push(("churn_probability".into(), f(|o| o.p)));
    cols.push(("probability_low".into(), f(|o| o.low)));
    cols.push(("probability_high".into(), f(|o| o.high)));
    cols.push((
        "leaf_support".into(),
        OutData::Int(good.iter().map(|o| Some(o.support)).collect()),
    ));
    cols.push((
        "predicted_churn".into(),
        OutData::Bool(good.iter().map(|o| o.churn).collect()),
    ));
    if let Some(sm) = &scorer.bundle.segments {
        cols.push((
            "segment_id".into(),
            OutData::Int(good.iter().map(|o| o.segment_id).collect()),
        ));
        cols.push(("segment".into(), s(|o| o.segment)));
        if sm.rfm.is_some() {
            cols.push(("rfm_class".into(), s(|o| o.rfm)));
        }
        if sm.lifecycle.is_some() {
            cols.push(("lifecycle_stage".into(), s(|o| o.lifecycle)));
        }
    }
    if scorer.bundle.playbook.is_some() {
        cols.push(("risk_band".into(), s(|o| o.band)));
        cols.push(("top_action".into(), s(|o| o.action)));
        cols.push((
            "expected_value".into(),
            OutData::Float(good.iter().map(|o| o.ev).collect()),
        ));
        cols.push(("treatment".into(), s(|o| o.treatment)));
    }
    cols.push(("warnings".into(), s(|o| o.warnings.as_deref())));
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
        let flagged = good.iter().filter(|o| o.churn).count();
        let warned = good.iter().filter(|o| o.warnings.is_some()).count();
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

/// The output cells of one scored row.
struct OutRow<'a> {
    id: Option<std::borrow::Cow<'a, str>>,
    p: f64,
    low: f64,
    high: f64,
    support: i64,
    churn: bool,
    segment_id: Option<i64>,
    segment: Option<&'a str>,
    rfm: Option<&'static str>,
    lifecycle: Option<&'static str>,
    band: Option<&'static str>,
    action: Option<&'a str>,
    ev: Option<f64>,
    treatment: Option<&'static str>,
    warnings: Option<String>,
}

fn inner(e: &churn::scoring::ScoreError) -> String {
    match e {
        churn::scoring::ScoreError::BadRow { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}
