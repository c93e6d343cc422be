//! Write a deterministic synthetic transaction log (CSV) for the out-of-core benchmarks:
//! `cargo run --release --example synth_log -- --customers 5000000 --output /tmp/log.csv`.
//!
//! Columns `order_id,customer_id,ts,quantity,unit_price`. Each customer starts on a day of
//! 2023–2024 and buys on average `--mean-lines` lines (1–3 lines per order, one timestamp per
//! order) at exponential gaps; about 3% of lines are returns (negative quantity). Rows are written
//! in rounds — every customer's first order, then every customer's second, … with customers in a
//! scattered order — so a customer's rows are spread over the whole file, as in a real log.

use clap::Parser;
use std::io::Write;

#[derive(Parser)]
struct Args {
    /// Customers.
    #[arg(long, default_value_t = 100_000)]
    customers: usize,
    /// Mean lines per customer.
    #[arg(long, default_value_t = 10.0)]
    mean_lines: f64,
    /// Seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Output CSV file.
    #[arg(long)]
    output: std::path::PathBuf,
}

/// splitmix64 of `x`: a stateless, well-mixed 64-bit hash.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform number in [0, 1) from `h`.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let n = a.customers;
    let start = chrono::NaiveDate::from_ymd_opt(2023, 1, 1)
        .expect("valid date")
        .and_hms_opt(0, 0, 0)
        .expect("valid time")
        .and_utc()
        .timestamp();
    // per customer: orders left and the current time (minutes since start)
    let mut orders_left: Vec<u16> = Vec::with_capacity(n);
    let mut minute: Vec<u32> = Vec::with_capacity(n);
    let mean_orders = a.mean_lines / 2.0; // 1–3 lines per order: 2 on average
    for c in 0..n {
        let h = mix(a.seed ^ (c as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        // geometric number of orders with the chosen mean, at least 1
        let p = 1.0 / mean_orders.max(1.0);
        let k = 1 + ((1.0 - unit(h)).ln() / (1.0 - p).ln()).floor().max(0.0) as u32;
        orders_left.push(k.min(u16::MAX as u32) as u16);
        minute.push((unit(mix(h)) * 730.0 * 1440.0) as u32);
    }
    let step = {
        // a stride coprime with n scatters the customers over each round
        let mut s = (n as f64 * 0.618_033_988_7) as usize | 1;
        while gcd(s, n.max(1)) != 1 {
            s += 2;
        }
        s
    };
    let file = std::fs::File::create(&a.output)?;
    let mut w = std::io::BufWriter::with_capacity(1 << 22, file);
    writeln!(w, "order_id,customer_id,ts,quantity,unit_price")?;
    let mut order_no: u64 = 0;
    let mut lines: u64 = 0;
    let mut round: u64 = 0;
    let mut active = true;
    while active {
        active = false;
        let mut j = 0usize;
        for _ in 0..n {
            j = (j + step) % n;
            if orders_left[j] == 0 {
                continue;
            }
            active = true;
            orders_left[j] -= 1;
            let h = mix(a.seed ^ ((j as u64) << 20) ^ round.wrapping_mul(0x9E37_79B9));
            // exponential gap with a mean of 40 days
            let gap = (-(1.0 - unit(h)).ln() * 40.0 * 1440.0) as u32;
            minute[j] = minute[j].saturating_add(gap);
            let ts = chrono::DateTime::from_timestamp(start + minute[j] as i64 * 60, 0)
                .expect("in range")
                .naive_utc();
            order_no += 1;
            let n_lines = 1 + (mix(h) % 3);
            for l in 0..n_lines {
                let hl = mix(h ^ (l + 1));
                let qty = 1 + (hl % 5) as i64;
                let qty = if unit(mix(hl)) < 0.03 { -qty } else { qty };
                let price = 1.0 + (unit(hl) * 4000.0).round() / 100.0;
                writeln!(
                    w,
                    "O{order_no},C{j:08},{},{qty},{price}",
                    ts.format("%Y-%m-%d %H:%M:%S")
                )?;
                lines += 1;
            }
        }
        round += 1;
    }
    w.flush()?;
    eprintln!(
        "wrote {lines} lines ({order_no} orders, {n} customers) to {}",
        a.output.display()
    );
    Ok(())
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
