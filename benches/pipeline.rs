//! Criterion benchmarks of the pipeline stages on the bundled samples.
//! Run: `cargo bench --bench pipeline`. Peer comparisons live in `benches/peers/`.

use churn::bundle;
use churn::config::ModelConfig;
use churn::features::Encoder;
use churn::ingest::{load, CustomerTableSpec, Source, TransactionSpec};
use churn::io::read_table;
use churn::model::tree::{fit_tree, CartLearner, TreeParams};
use churn::scoring::Scorer;
use churn::train::{train, TrainOptions};
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn telco_spec() -> CustomerTableSpec {
    CustomerTableSpec {
        path: root().join("training/data/Telco-Customer-Churn.csv"),
        label: "Churn".into(),
        id: Some("customerID".into()),
        ..Default::default()
    }
}

fn benches(c: &mut Criterion) {
    let tx = TransactionSpec {
        path: root().join("training/data/cdnow_master_transactions.csv"),
        customer_col: "customer_id".into(),
        time_col: "date".into(),
        amount_col: "dollar_value".into(),
        cutoff: Some("1997-10-01".into()),
        horizon_days: 273,
        ..Default::default()
    };
    c.bench_function("transaction_features_cdnow_69k", |b| {
        b.iter(|| black_box(load(&Source::Transactions(tx.clone())).unwrap()))
    });
    c.bench_function("ingest_telco_7k", |b| {
        b.iter(|| black_box(load(&Source::Table(telco_spec())).unwrap()))
    });

    let data = load(&Source::Table(telco_spec())).unwrap();
    let rows: Vec<usize> = (0..data.nrows()).collect();
    let enc = Encoder::fit(&data, &rows, 10);
    let x = enc.transform(&data, &rows).unwrap();
    let w = vec![1.0; rows.len()];
    let params = TreeParams {
        max_depth: 8,
        min_samples_leaf: 20,
        ..TreeParams::default()
    };
    c.bench_function("fit_tree_telco_7k_depth8", |b| {
        b.iter(|| black_box(fit_tree(&CartLearner, &x, &data.label, &w, &rows, &params).unwrap()))
    });

    let dir = tempfile::tempdir().unwrap();
    let opts = TrainOptions {
        name: "bench".into(),
        out_dir: dir.path().to_path_buf(),
        seed: 1,
        model: ModelConfig::default(),
        economics: None,
        data_sha256: String::new(),
        progress: false,
        segments: Default::default(),
        previous: None,
        playbook: None,
    };
    let mut g = c.benchmark_group("train");
    g.sample_size(10);
    g.bench_function("full_training_telco_cv_grid", |b| {
        b.iter(|| black_box(train(data.clone(), &opts).unwrap()))
    });
    g.finish();

    let scorer = Scorer::new(bundle::load(dir.path()).unwrap());
    let table = read_table(&root().join("training/data/Telco-Customer-Churn.csv"), None).unwrap();
    let bind = scorer.bind(&table).unwrap();
    c.bench_function("encode_and_score_one_customer", |b| {
        b.iter(|| {
            black_box(
                scorer
                    .score(|i| Some(table.columns[bind[i]].data.get(black_box(17))))
                    .unwrap(),
            )
        })
    });
    // 10k customers: the Telco rows, cycled
    let picks: Vec<usize> = (0..10_000).map(|i| i % table.nrows).collect();
    c.bench_function("score_10k_customers_one_thread", |b| {
        b.iter(|| {
            let mut s = 0.0;
            for &r in &picks {
                s += scorer
                    .score(|i| Some(table.columns[bind[i]].data.get(r)))
                    .unwrap()
                    .prediction
                    .probability;
            }
            black_box(s)
        })
    });
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
