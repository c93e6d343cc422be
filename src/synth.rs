//! Deterministic synthetic churn data for benchmarks and peer comparisons.
//!
//! Every benchmark and peer script reads the file this module writes, so the Rust and Python sides
//! see identical rows. The same `(rows, numeric, categorical, seed)` always gives the same table.
//!
//! Columns: `customer_id`, up to 12 behavioural numeric columns (tenure, charges, support calls,
//! logins, …) followed by uniform `noise_k` columns up to `numeric`, then up to 4 categorical
//! columns (`contract`, `payment_method`, `plan`, `region`), then the label `churned` (0/1).
//! The label is drawn from a nonlinear logistic rule (thresholds, interactions, categorical
//! effects) — the Bernoulli draw is the noise — tuned to about 25% positives. Drivers that are not
//! emitted (when `numeric` or `categorical` is small) still act on the label, as hidden causes.

use crate::ingest::{load_customer_table, CustomerData, CustomerTableSpec, IngestError};
use crate::io::{OutData, RawColumn, RawData, RawTable};
use crate::util::Rng;

/// Shape of a synthetic table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthSpec {
    /// Number of customers (rows).
    pub rows: usize,
    /// Numeric feature columns (behavioural ones first, then noise).
    pub numeric: usize,
    /// Categorical feature columns (0 to 4).
    pub categorical: usize,
    /// Seed of the generator.
    pub seed: u64,
}

impl Default for SynthSpec {
    fn default() -> Self {
        SynthSpec {
            rows: 100_000,
            numeric: 16,
            categorical: 4,
            seed: 42,
        }
    }
}

/// Names of the behavioural numeric columns, in output order.
pub const NUMERIC: [&str; 12] = [
    "tenure_months",
    "monthly_charges",
    "total_charges",
    "support_calls_90d",
    "days_since_last_login",
    "logins_30d",
    "payment_delays_12m",
    "discount_pct",
    "age_years",
    "data_usage_gb",
    "num_products",
    "nps_score",
];

/// Categorical columns and their levels.
pub const CATEGORICAL: [(&str, &[&str]); 4] = [
    ("contract", &["month-to-month", "one-year", "two-year"]),
    (
        "payment_method",
        &[
            "electronic check",
            "mailed check",
            "bank transfer",
            "credit card",
        ],
    ),
    ("plan", &["basic", "standard", "premium"]),
    ("region", &["north", "south", "east", "west", "central"]),
];

/// Name of the label column.
pub const LABEL: &str = "churned";

fn round(x: f64, digits: i32) -> f64 {
    let s = 10f64.powi(digits);
    (x * s).round() / s
}

/// Standard normal draw (Box–Muller, one value per call).
fn normal(rng: &mut Rng) -> f64 {
    let u1 = rng.uniform().max(1e-300);
    let u2 = rng.uniform();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Generate the table as named columns ready for [`crate::io::write_table`].
pub fn generate(spec: &SynthSpec) -> Vec<(String, OutData<'static>)> {
    let n = spec.rows;
    let ncat = spec.categorical.min(CATEGORICAL.len());
    let mut rng = Rng::new(spec.seed);
    let mut ids = Vec::with_capacity(n);
    let mut num: Vec<Vec<f64>> = (0..spec.numeric).map(|_| Vec::with_capacity(n)).collect();
    let mut cat: Vec<Vec<Option<String>>> = (0..ncat).map(|_| Vec::with_capacity(n)).collect();
    let mut label = Vec::with_capacity(n);
    for i in 0..n {
        // categorical drivers
        let contract = match rng.uniform() {
            u if u < 0.52 => 0,
            u if u < 0.76 => 1,
            _ => 2,
        };
        let payment = rng.below(4);
        let plan = match rng.uniform() {
            u if u < 0.45 => 0,
            u if u < 0.8 => 1,
            _ => 2,
        };
        let region = rng.below(5);
        // behavioural numbers
        let tenure = if contract == 0 {
            (rng.uniform().powf(1.6) * 72.0).floor()
        } else {
            (rng.uniform().powf(0.7) * 72.0).floor()
        };
        let monthly = round(
            (18.0 + 35.0 * plan as f64 + 30.0 * rng.uniform() + 6.0 * normal(&mut rng))
                .clamp(18.0, 120.0),
            2,
        );
        let total = round(tenure * monthly * (0.9 + 0.2 * rng.uniform()), 2);
        let calls = (-(rng.uniform().max(1e-12)).ln() * 1.6).floor().min(15.0);
        let days = round(-(rng.uniform().max(1e-12)).ln() * 12.0, 1);
        let logins = (rng.uniform() * (60.0 - days.min(59.0))).floor();
        let delays = (-(rng.uniform().max(1e-12)).ln() * 0.8).floor().min(6.0);
        let discount = 5.0 * rng.below(6) as f64;
        let age = 18.0 + rng.below(68) as f64;
        let usage = round((1.5 + 0.8 * normal(&mut rng)).exp(), 3);
        let products = 1.0 + rng.below(5) as f64;
        let nps = rng.below(11) as f64;
        let behaviour = [
            tenure, monthly, total, calls, days, logins, delays, discount, age, usage, products,
            nps,
        ];
        let z = 0.1 + if contract == 0 { 1.3 } else { 0.0 }
            - if contract == 2 { 0.9 } else { 0.0 }
            - 0.045 * tenure.min(48.0)
            + 0.018 * (monthly - 65.0)
            + 0.45 * (calls - 2.0).max(0.0)
            + if days > 21.0 { 1.1 } else { 0.0 }
            + 0.01 * days.min(60.0)
            - 0.04 * logins
            + 0.35 * delays
            - if contract == 0 { 0.05 * discount } else { 0.0 }
            + if payment == 0 { 0.6 } else { 0.0 }
            - 0.25 * (products - 1.0)
            - 0.12 * (nps - 6.0)
            + if plan == 2 && monthly > 95.0 {
                0.5
            } else {
                0.0
            };
        let p = 1.0 / (1.0 + (-z).exp());
        label.push((rng.uniform() < p) as i64);
        for (c, col) in num.iter_mut().enumerate() {
            col.push(if c < behaviour.len() {
                behaviour[c]
            } else {
                round(rng.uniform() * 100.0, 3)
            });
        }
        let levels = [contract, payment, plan, region];
        for (c, col) in cat.iter_mut().enumerate() {
            col.push(Some(CATEGORICAL[c].1[levels[c]].to_string()));
        }
        ids.push(Some(format!("C{i:08}")));
    }
    let mut out = vec![("customer_id".to_string(), OutData::Text(ids))];
    for (c, col) in num.into_iter().enumerate() {
        let name = if c < NUMERIC.len() {
            NUMERIC[c].to_string()
        } else {
            format!("noise_{}", c - NUMERIC.len() + 1)
        };
        out.push((name, OutData::Float(col.into_iter().map(Some).collect())));
    }
    for (c, col) in cat.into_iter().enumerate() {
        out.push((CATEGORICAL[c].0.to_string(), OutData::Text(col)));
    }
    out.push((
        LABEL.to_string(),
        OutData::Int(label.into_iter().map(Some).collect()),
    ));
    out
}

/// The synthetic table as validated customer data, straight from memory (no file): the same
/// ingest path a file of it would take (`customer_id` is the id, `churned` the label).
pub fn customer_data(spec: &SynthSpec) -> Result<CustomerData, IngestError> {
    let columns: Vec<RawColumn> = generate(spec)
        .into_iter()
        .map(|(name, data)| RawColumn {
            name,
            data: match data {
                OutData::Float(v) => RawData::Num(v.into_iter().collect()),
                OutData::Int(v) => {
                    RawData::Num(v.into_iter().map(|x| x.map(|x| x as f64)).collect())
                }
                OutData::Text(v) => RawData::Text(v.iter().map(|s| s.as_deref()).collect()),
                OutData::Str(v) => RawData::Text(v.into_iter().collect()),
                OutData::Bool(v) => {
                    RawData::Num(v.into_iter().map(|b| Some(b as u8 as f64)).collect())
                }
            },
        })
        .collect();
    let raw = RawTable {
        path: "<synthetic>".into(),
        columns,
        nrows: spec.rows,
    };
    load_customer_table(
        raw,
        &CustomerTableSpec {
            label: LABEL.into(),
            id: Some("customer_id".into()),
            ..Default::default()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_table_and_about_a_quarter_positive() {
        let spec = SynthSpec {
            rows: 20_000,
            numeric: 14,
            categorical: 4,
            seed: 7,
        };
        let a = generate(&spec);
        let b = generate(&spec);
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a.len(), 1 + 14 + 4 + 1);
        assert_eq!(a[14].0, "noise_2");
        let OutData::Int(y) = &a.last().unwrap().1 else {
            panic!("label is an integer column")
        };
        let rate = y.iter().map(|v| v.unwrap()).sum::<i64>() as f64 / y.len() as f64;
        assert!((0.20..0.30).contains(&rate), "positive rate {rate}");
        let c = generate(&SynthSpec { seed: 8, ..spec });
        assert_ne!(format!("{a:?}"), format!("{c:?}"));
    }
}
