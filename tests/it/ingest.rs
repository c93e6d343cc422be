//! Ingestion over the bundled samples and every error path of the foundation issue.

use crate::util::*;
use churn::ingest::{
    build_transaction_features, load, load_customer_table, CustomerTableSpec, FeatureKind,
    FeatureValues, IngestError, Source, TransactionSpec,
};
use churn::io::{read_table, write_table, Format};

fn table_err(path: &std::path::Path, spec: CustomerTableSpec) -> String {
    let spec = CustomerTableSpec {
        path: path.to_path_buf(),
        ..spec
    };
    match load(&Source::Table(spec)) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn telco_rows_types_and_missing_total_charges() {
    let d = telco_data();
    assert_eq!(d.nrows(), 7043);
    assert_eq!(
        d.positive_value, "Yes",
        "positive label inferred from Yes/No"
    );
    assert_eq!(d.label.iter().filter(|&&b| b).count(), 1869);
    let q = &d.quality;
    assert_eq!(q.rows_read, 7043);
    let tc = q.columns.iter().find(|c| c.name == "TotalCharges").unwrap();
    assert_eq!(tc.missing, 11, "blank TotalCharges become missing values");
    assert_eq!(tc.kind, "numeric");
    let f = |name: &str| d.features.iter().find(|f| f.name == name).unwrap();
    assert_eq!(f("tenure").kind, FeatureKind::Numeric);
    assert_eq!(f("Contract").kind, FeatureKind::Categorical);
    assert!(
        matches!(f("Partner").kind, FeatureKind::Boolean { ref true_token, .. } if true_token == "Yes")
    );
    assert!(matches!(
        f("SeniorCitizen").kind,
        FeatureKind::Boolean { .. }
    ));
    assert!(d
        .features
        .iter()
        .all(|f| f.name != "customerID" && f.name != "Churn"));
    let FeatureValues::Num(tc) = &f("TotalCharges").values else {
        panic!()
    };
    assert_eq!(tc.iter().filter(|v| v.is_none()).count(), 11);
    let rendered = q.render();
    assert!(rendered.contains("TotalCharges") && rendered.contains("26.54% churn"));
}

#[test]
fn type_override_turns_boolean_into_categorical() {
    let mut spec = telco_spec();
    spec.types.insert(
        "SeniorCitizen".into(),
        churn::ingest::ColumnTypeOverride::Categorical,
    );
    let d = load(&Source::Table(spec)).unwrap();
    let f = d
        .features
        .iter()
        .find(|f| f.name == "SeniorCitizen")
        .unwrap();
    assert_eq!(f.kind, FeatureKind::Categorical);
}

#[test]
fn cdnow_known_facts() {
    let spec = cdnow_spec();
    let d = load(&Source::Transactions(spec.clone())).unwrap();
    assert_eq!(d.nrows(), 23_570);
    assert_eq!(d.label.iter().filter(|&&b| b).count(), 16_512);
    // the default cutoff (day after the last event minus the horizon) is the same date here
    let d2 = load(&Source::Transactions(TransactionSpec {
        cutoff: None,
        ..spec
    }))
    .unwrap();
    assert_eq!(d2.label, d.label);
    assert!(d2.quality.notes.iter().any(|n| n.contains("1997-10-01")));
}

fn tx_spec() -> TransactionSpec {
    TransactionSpec {
        customer_col: "cust".into(),
        time_col: "ts".into(),
        amount_col: "amt".into(),
        cutoff: Some("2024-07-01".into()),
        horizon_days: 30,
        window_days: 30,
        ..Default::default()
    }
}

#[test]
fn transaction_features_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "tx.csv",
        "cust,ts,amt\n\
         a,2024-04-15,10\n\
         a,2024-05-20 10:00:00,30\n\
         a,2024-06-10,20\n\
         a,2024-06-20,-5\n\
         b,2024-06-30T23:59:59,100\n\
         b,2024-07-01,1\n\
         c,2024-07-05,50\n\
         ,2024-06-01,7\n\
         d,2024-03-01,5\n\
         d,2024-07-31,5\n\
         e,2024-06-15,20\n\
         e,2024-07-02,-20\n\
         f,2024-06-15,-3\n",
    );
    let raw = read_table(&p, None).unwrap();
    let d = build_transaction_features(&raw, &tx_spec()).unwrap();
    let ids = d.ids.as_ref().unwrap();
    assert_eq!(
        ids,
        &["a", "b", "d", "e"],
        "c starts after the cutoff, f only returned; order of first appearance"
    );
    // a: no event in [cutoff, cutoff+30d) → churned; b: event exactly at the cutoff → active;
    // d: event exactly at cutoff + horizon is outside the window → churned;
    // e: only a return after the cutoff → churned
    assert_eq!(d.label, vec![true, false, true, true]);
    let col = |name: &str| match &d.features.iter().find(|f| f.name == name).unwrap().values {
        FeatureValues::Num(v) => v.iter().map(|x| x.unwrap()).collect::<Vec<f64>>(),
        _ => panic!(),
    };
    assert_eq!(
        col("frequency"),
        vec![3.0, 1.0, 1.0, 1.0],
        "the return is not a purchase"
    );
    assert_eq!(
        col("monetary_total"),
        vec![55.0, 100.0, 5.0, 20.0],
        "returns net into spend"
    );
    assert_eq!(col("monetary_mean")[0], 55.0 / 3.0);
    assert_eq!(col("recency_days")[0], 21.0);
    assert!((col("recency_days")[1] - 1.0 / 86_400.0).abs() < 1e-9);
    assert_eq!(col("tenure_days")[0], 77.0);
    // window 30 days: [06-01, 07-01) holds one purchase of a, [05-02, 06-01) one → 1.0
    assert_eq!(col("frequency_trend"), vec![1.0, 1.0, 0.0, 1.0]);
    assert_eq!(col("active_months"), vec![3.0, 1.0, 1.0, 1.0]);
    let q = &d.quality;
    assert!(q
        .dropped
        .iter()
        .any(|x| x.rows == 1 && x.reason.contains("without a customer id")));
    assert!(q
        .dropped
        .iter()
        .any(|x| x.rows == 2 && x.reason.contains("no purchase before the cutoff")));
}

#[test]
fn features_roundtrip_through_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let d = telco_data();
    let out = dir.path().join("t.parquet");
    write_table(&out, d.output_columns()).unwrap();
    let back = load(&Source::Table(CustomerTableSpec {
        path: out,
        ..telco_spec()
    }))
    .unwrap();
    assert_eq!(back.nrows(), d.nrows());
    assert_eq!(back.label, d.label);
    assert_eq!(back.ids, d.ids);
    for (a, b) in d.features.iter().zip(&back.features) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.values, b.values, "column {}", a.name);
    }
}

#[test]
fn unsupported_extension_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "data.xlsx", "x");
    let e = table_err(&p, telco_spec());
    assert!(
        e.contains("data.xlsx") && e.contains("unsupported file type"),
        "{e}"
    );
    assert!(Format::from_path(std::path::Path::new("a.csv.gz")).is_ok());
    let e = table_err(&dir.path().join("nope.csv"), telco_spec());
    assert!(e.contains("nope.csv") && e.contains("cannot open"), "{e}");
}

#[test]
fn unknown_label_column_lists_available_columns() {
    let spec = CustomerTableSpec {
        label: "churn_flag".into(),
        ..telco_spec()
    };
    let e = table_err(&telco(), spec);
    assert!(
        e.contains("'churn_flag'") && e.contains("available columns: customerID, gender"),
        "{e}"
    );
}

#[test]
fn label_errors_list_the_values_found() {
    let dir = tempfile::tempdir().unwrap();
    let three = write(dir.path(), "three.csv", "id,x,y\n1,1,a\n2,2,b\n3,3,c\n");
    let spec = CustomerTableSpec {
        label: "y".into(),
        ..Default::default()
    };
    let e = table_err(&three, spec.clone());
    assert!(
        e.contains("exactly two distinct values") && e.contains("'a' (1), 'b' (1), 'c' (1)"),
        "{e}"
    );
    let unclear = write(dir.path(), "unclear.csv", "x,y\n1,red\n2,blue\n");
    let e = table_err(&unclear, spec.clone());
    assert!(
        e.contains("--positive") && e.contains("'blue'") && e.contains("'red'"),
        "{e}"
    );
    let e = table_err(
        &unclear,
        CustomerTableSpec {
            positive: Some("green".into()),
            ..spec
        },
    );
    assert!(e.contains("'green' does not occur"), "{e}");
}

#[test]
fn duplicate_ids_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "dup.csv",
        "id,x,y\nA,1,1\nB,2,0\nA,3,1\nB,4,0\nC,5,1\n",
    );
    let e = table_err(
        &p,
        CustomerTableSpec {
            label: "y".into(),
            id: Some("id".into()),
            ..Default::default()
        },
    );
    assert!(
        e.contains("2 duplicated ids")
            && e.contains("'A' (rows 1 and 3)")
            && e.contains("'B' (rows 2 and 4)"),
        "{e}"
    );
}

#[test]
fn personal_data_is_refused_as_a_feature() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "bank.csv",
        "CustomerId,Surname,Age,Exited\n1,Smith,30,1\n2,Jones,40,0\n",
    );
    let spec = CustomerTableSpec {
        label: "Exited".into(),
        id: Some("CustomerId".into()),
        ..Default::default()
    };
    let e = table_err(&p, spec.clone());
    assert!(
        e.contains("'Surname'") && e.contains("personal data") && e.contains("--drop Surname"),
        "{e}"
    );
    let ok = load(&Source::Table(CustomerTableSpec {
        path: p,
        drop: vec!["Surname".into()],
        ..spec
    }))
    .unwrap();
    assert_eq!(ok.features.len(), 1);
}

#[test]
fn stray_text_in_a_numeric_column_names_row_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("x,y\n");
    for i in 0..100 {
        text.push_str(&format!(
            "{},{}\n",
            if i == 42 {
                "abc".to_string()
            } else {
                i.to_string()
            },
            i % 2
        ));
    }
    let p = write(dir.path(), "num.csv", &text);
    let e = table_err(
        &p,
        CustomerTableSpec {
            label: "y".into(),
            ..Default::default()
        },
    );
    assert!(
        e.contains("row 43") && e.contains("column 'x'") && e.contains("'abc'"),
        "{e}"
    );
}

#[test]
fn transaction_errors_name_row_column_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "tx.csv",
        "cust,ts,amt\na,2024-01-01,5\nb,01/02/2024,x7\n",
    );
    let raw = read_table(&p, None).unwrap();
    let e = build_transaction_features(&raw, &tx_spec())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("row 2") && e.contains("'amt'") && e.contains("'x7'"),
        "{e}"
    );

    let p = write(
        dir.path(),
        "tx2.csv",
        "cust,ts,amt\na,2024-01-01,5\nb,yesterday,7\n",
    );
    let raw = read_table(&p, None).unwrap();
    let e = build_transaction_features(&raw, &tx_spec())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("row 2") && e.contains("'ts'") && e.contains("'yesterday'"),
        "{e}"
    );

    let e = build_transaction_features(
        &raw,
        &TransactionSpec {
            cutoff: Some("2024-13-45".into()),
            ..tx_spec()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("cutoff '2024-13-45'"), "{e}");

    let e = build_transaction_features(
        &raw,
        &TransactionSpec {
            amount_col: "price".into(),
            ..tx_spec()
        },
    )
    .unwrap_err();
    assert!(matches!(e, IngestError::UnknownColumn { .. }));
    assert!(
        e.to_string().contains("'price'")
            && e.to_string().contains("available columns: cust, ts, amt")
    );
}

#[test]
fn missing_label_rows_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "m.csv", "x,y\n1,1\n2,\n3,0\n4,1\n");
    let raw = read_table(&p, None).unwrap();
    let d = load_customer_table(
        raw,
        &CustomerTableSpec {
            label: "y".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(d.nrows(), 3);
    assert_eq!(d.quality.dropped[0].rows, 1);
}

#[test]
fn online_retail_known_facts_when_shared_data_is_present() {
    let Some(p) = online_retail() else {
        return;
    };
    let spec = TransactionSpec {
        path: p,
        customer_col: "CustomerID".into(),
        time_col: "InvoiceDate".into(),
        amount_col: "UnitPrice".into(),
        quantity_col: Some("Quantity".into()),
        unit_price: true,
        cutoff: Some("2011-09-01".into()),
        horizon_days: 100,
        ..Default::default()
    };
    let d = load(&Source::Transactions(spec)).unwrap();
    // the dataset README: 1,365 of 3,317 customers churned (cancellations are not purchases)
    assert_eq!(d.nrows(), 3_317);
    assert_eq!(d.label.iter().filter(|&&b| b).count(), 1_365);
    assert_eq!(d.quality.rows_read, 541_909);
    assert!(d.quality.dropped.iter().any(|x| x.rows == 135_080));
}

// ---------------------------------------------------------------- out of core (issue 16)

/// Streams `spec`'s log in chunks of `chunk_bytes` and checks the table against the in-memory
/// build: same customers in the same order, same values (bit for bit: the fold is the same code
/// over the same row order), same labels and row counts.
fn assert_streamed_equal(spec: &TransactionSpec, chunk_bytes: usize) {
    use churn::ingest::{stream_transaction_features, StreamOptions};
    let raw = read_table(&spec.path, Some(&spec.columns())).unwrap();
    let mem = build_transaction_features(&raw, spec).unwrap();
    let mut calls = 0;
    let streamed = stream_transaction_features(
        &spec.path,
        spec,
        StreamOptions {
            chunk_bytes,
            memory_limit: None,
        },
        &mut |_, done, total| {
            calls += 1;
            assert!(total == 0 || done <= total);
        },
    )
    .unwrap();
    assert!(
        calls > 1,
        "one chunk only: the test would not cross a boundary"
    );
    assert_eq!(streamed.ids, mem.ids);
    assert_eq!(streamed.label, mem.label);
    assert_eq!(streamed.features, mem.features);
    assert_eq!(streamed.quality.rows_read, mem.quality.rows_read);
    assert_eq!(streamed.quality.rows_out, mem.quality.rows_out);
    assert_eq!(
        format!("{:?}", streamed.quality.dropped),
        format!("{:?}", mem.quality.dropped)
    );
    assert_eq!(streamed.quality.notes, mem.quality.notes);
}

#[test]
fn streamed_features_equal_the_in_memory_table() {
    // an explicit cutoff (one pass) and the default one (two passes), 64 KB and 1 MB chunks
    let spec = cdnow_spec();
    assert_streamed_equal(&spec, 64 << 10);
    let default_cutoff = TransactionSpec {
        cutoff: None,
        ..cdnow_spec()
    };
    assert_streamed_equal(&default_cutoff, 1 << 20);
    // gzip, orders and unit prices, returns
    if let Some(p) = online_retail() {
        let retail = TransactionSpec {
            path: p,
            customer_col: "CustomerID".into(),
            time_col: "InvoiceDate".into(),
            amount_col: "UnitPrice".into(),
            quantity_col: Some("Quantity".into()),
            order_col: Some("InvoiceNo".into()),
            unit_price: true,
            cutoff: Some("2011-09-01".into()),
            horizon_days: 100,
            ..Default::default()
        };
        assert_streamed_equal(&retail, 4 << 20);
    }
}

#[test]
fn streamed_chunks_respect_quoted_newlines_and_number_rows_in_the_file() {
    // quoted fields with commas and newlines, chunks far smaller than a record: every boundary
    // falls somewhere awkward
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("customer_id,note,date,amount,order\n");
    for i in 0..400 {
        text.push_str(&format!(
            "c{},\"line one, with a comma\nline \"\"two\"\"\",2024-0{}-1{} 10:00:00,{}.5,o{}\n",
            i % 37,
            1 + i % 9,
            i % 10,
            i % 13,
            i / 2
        ));
    }
    let path = write(dir.path(), "log.csv", &text);
    let spec = TransactionSpec {
        path: path.clone(),
        customer_col: "customer_id".into(),
        time_col: "date".into(),
        amount_col: "amount".into(),
        order_col: Some("order".into()),
        cutoff: Some("2024-08-01".into()),
        ..Default::default()
    };
    for chunk in [16, 100, 1000] {
        assert_streamed_equal(&spec, chunk);
    }
    // a bad amount in the 350th data row is reported there, however the file was chunked
    let bad = text.replacen(
        ",2024-08-19 10:00:00,11.5,o174\n",
        ",2024-08-19 10:00:00,eleven,o174\n",
        1,
    );
    assert_ne!(bad, text);
    let path = write(dir.path(), "bad.csv", &bad);
    let spec = TransactionSpec { path, ..spec };
    let raw = read_table(&spec.path, Some(&spec.columns())).unwrap();
    let mem_err = build_transaction_features(&raw, &spec)
        .unwrap_err()
        .to_string();
    let stream_err = churn::ingest::stream_transaction_features(
        &spec.path,
        &spec,
        churn::ingest::StreamOptions {
            chunk_bytes: 100,
            memory_limit: None,
        },
        &mut |_, _, _| {},
    )
    .unwrap_err()
    .to_string();
    assert_eq!(stream_err, mem_err);
    assert!(
        stream_err.contains("row 350") && stream_err.contains("'eleven'"),
        "{stream_err}"
    );
}

#[test]
fn features_memory_limit_via_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &std::path::Path, extra: &[&str]| {
        let mut a: Vec<String> = [
            "features",
            "--config",
            "training/cdnow.toml",
            "--quiet",
            "--output",
        ]
        .map(String::from)
        .to_vec();
        a.push(out.display().to_string());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run_args = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        run("churn-train", &refs)
    };
    let (mem, streamed) = (dir.path().join("mem.csv"), dir.path().join("stream.csv"));
    let (code, _, err) = run_args(args(&mem, &[]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run_args(args(&streamed, &["--memory-limit", "256M"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(&mem).unwrap(),
        std::fs::read(&streamed).unwrap()
    );
    // a limit the customers cannot fit in stops with a message naming the flag
    let (code, _, err) = run_args(args(&streamed, &["--memory-limit", "1M"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--memory-limit") && err.contains("customers"),
        "{err}"
    );
    let (code, _, err) = run_args(args(&streamed, &["--memory-limit", "lots"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'lots'"), "{err}");
}

// ------------------------------------------- one record larger than the limit (issue 31, 6)

/// `churn-train features` on `log` (columns customer_id, date, amount) under `--memory-limit
/// limit`, measured.
#[cfg(target_os = "linux")]
fn features_measured(log: &std::path::Path, limit: &str) -> Measured {
    let out = log.with_extension("out.csv");
    let mut args = features_args(log, out.to_str().unwrap());
    args.extend(["--memory-limit", limit, "--quiet"]);
    run_measured(&args, std::time::Duration::from_secs(60))
}

/// Write a log: the header, `before` ordinary rows, the line `odd`, then ordinary rows up to
/// about `total` bytes.
fn write_log(path: &std::path::Path, before: usize, odd: &[u8], total: usize) {
    use std::io::Write;
    let row = b"c12345,2024-01-15,12.50\n";
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(b"customer_id,date,amount\n").unwrap();
    for _ in 0..before {
        f.write_all(row).unwrap();
    }
    f.write_all(odd).unwrap();
    let block = row.repeat(4096);
    let mut written = 24 + before * row.len() + odd.len();
    while written < total {
        f.write_all(&block).unwrap();
        written += block.len();
    }
    f.flush().unwrap();
}

#[test]
#[cfg(target_os = "linux")]
fn memory_limit_stops_a_stray_quote_fast_naming_its_line() {
    // one stray quote makes the rest of a 40 MB log one quoted field: it was read whole and
    // handed to the parser (on the first data row: 311 MB peak under a 16 MiB limit, the whole
    // field echoed); later in the file, after chunks were folded, it must be found the same way
    let dir = tempfile::tempdir().unwrap();
    for (before, line) in [(0, 2), (1000, 1002)] {
        let log = dir.path().join(format!("log{line}.csv"));
        write_log(&log, before, b"c7,\"2024-01-01,10.00\n", 40 << 20);
        let m = features_measured(&log, "16M");
        std::fs::remove_file(&log).unwrap();
        assert_eq!(m.code, 2, "{}", m.stderr);
        assert!(
            m.stderr.contains(&format!("log{line}.csv: line {line}:"))
                && m.stderr.contains("quote is probably unterminated")
                && m.stderr.contains("--memory-limit 16 MiB"),
            "{}",
            m.stderr
        );
        assert!(m.stderr.len() < 1000, "{} bytes of stderr", m.stderr.len());
        let bound = 4 * (16 << 20) + (100 << 20);
        assert!(
            m.peak_rss < bound,
            "peak RSS {} MB over {} MB",
            m.peak_rss >> 20,
            bound >> 20
        );
        assert!(m.elapsed.as_secs() < 30, "{:?}", m.elapsed);
    }
}

#[test]
#[cfg(target_os = "linux")]
fn memory_limit_refuses_a_line_longer_than_it_allows() {
    // a 20 MB line (no quote, no newline) under an 8 MiB limit: read and parsed whole before
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.csv");
    let mut odd = b"c7,2024-01-01,".to_vec();
    odd.extend(std::iter::repeat_n(b'9', 20 << 20));
    odd.push(b'\n');
    write_log(&log, 2, &odd, 0);
    let m = features_measured(&log, "8M");
    assert_eq!(m.code, 2, "{}", m.stderr);
    assert!(
        m.stderr.contains("line 4")
            && m.stderr.contains("line is too long")
            && m.stderr.contains("--memory-limit 8 MiB"),
        "{}",
        m.stderr
    );
    assert!(m.stderr.len() < 1000, "{} bytes of stderr", m.stderr.len());
    let bound = 4 * (8 << 20) + (100 << 20);
    assert!(
        m.peak_rss < bound,
        "peak RSS {} MB over {} MB",
        m.peak_rss >> 20,
        bound >> 20
    );
}

#[test]
fn memory_limit_under_16_mib_builds_a_log_that_fits() {
    // CDNOW's 23,570 customers take about 5 MB; the limit check counted 4 read buffers of at
    // least 4 MB each, so no limit under 16 MiB could pass: chunks are now at most 1/8 of it
    let dir = tempfile::tempdir().unwrap();
    let (mem, streamed) = (dir.path().join("mem.csv"), dir.path().join("stream.csv"));
    for (out, extra) in [(&mem, None), (&streamed, Some("16M"))] {
        let mut args = vec![
            "features",
            "--config",
            "training/cdnow.toml",
            "--quiet",
            "--output",
            out.to_str().unwrap(),
        ];
        if let Some(limit) = extra {
            args.extend(["--memory-limit", limit]);
        }
        let (code, _, err) = run("churn-train", &args);
        assert_eq!(code, 0, "{err}");
    }
    assert_eq!(
        std::fs::read(&mem).unwrap(),
        std::fs::read(&streamed).unwrap()
    );
}
