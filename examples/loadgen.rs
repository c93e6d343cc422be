//! Open-loop HTTP load generator for latency at a fixed request rate (wrk measures peak
//! throughput; this measures latency at a given load without coordinated omission: each request's
//! latency counts from the moment it was *scheduled*, not sent).
//!
//! Run: `cargo run --release --example loadgen -- ADDR PATH BODY_FILE RATE SECONDS CONNECTIONS`
//! Prints one JSON line: {"rate":…, "achieved":…, "p50_ms":…, "p90_ms":…, "p99_ms":…, "max_ms":…, "errors":…}

#[path = "support/http1.rs"]
mod http1;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 6 {
        eprintln!("usage: loadgen ADDR PATH BODY_FILE RATE SECONDS CONNECTIONS");
        std::process::exit(2);
    }
    let (addr, path) = (a[0].clone(), a[1].clone());
    let body = std::fs::read(&a[2]).expect("body file");
    let rate: f64 = a[3].parse().expect("rate");
    let secs: f64 = a[4].parse().expect("seconds");
    let conns: usize = a[5].parse().expect("connections");
    let req = {
        let mut r = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(&body);
        r
    };
    let start = Instant::now() + Duration::from_millis(100);
    let per_conn = rate / conns as f64;
    let n_per_conn = (per_conn * secs) as usize;
    let handles: Vec<_> = (0..conns)
        .map(|c| {
            let addr = addr.clone();
            let req = req.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(n_per_conn);
                let mut errors = 0usize;
                let stream = TcpStream::connect(&addr).expect("connect");
                stream.set_nodelay(true).ok();
                let mut w = stream.try_clone().expect("clone");
                let mut r = BufReader::new(stream);
                let offset = c as f64 / rate;
                for k in 0..n_per_conn {
                    let due = start + Duration::from_secs_f64(offset + k as f64 / per_conn);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    if w.write_all(&req).is_err() {
                        errors += 1;
                        break;
                    }
                    if http1::response(&mut r).is_none_or(|(status, _)| status != 200) {
                        errors += 1;
                    }
                    lat.push(due.elapsed().as_secs_f64() * 1e3);
                }
                (lat, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (l, e) = h.join().expect("thread");
        all.extend(l);
        errors += e;
    }
    let wall = start.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{{\"rate\":{rate},\"achieved\":{:.1},\"requests\":{},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\"errors\":{errors}}}",
        all.len() as f64 / wall,
        all.len(),
        q(0.5),
        q(0.9),
        q(0.99),
        all.last().copied().unwrap_or(f64::NAN)
    );
}
