//! Soak test driver: an open-loop mix of valid, invalid and oversize requests at a fixed rate for
//! a fixed time, with an admin reload every 10 s and the server's RSS sampled every second.
//! Loopback only; stops by itself. `benches/soak.sh` runs it against a fresh `churn-serve`.
//!
//! Run: `cargo run --release --example soak -- ADDR PID VALID_BODY INVALID_BODY RATE SECONDS
//! CONNECTIONS ADMIN_TOKEN`
//!
//! Mix per connection, by request number: every 50th is invalid (422 expected), every 5000th is
//! oversize (declares a 5 MiB body and sends its first 64 KiB: 413 expected, refused from the
//! declared length), the rest valid (200 expected). Latency counts from the
//! moment a request was scheduled (no coordinated omission). Prints one JSON object: per kind the
//! count and the statuses that were not the expected one; p50 / p99 / max of valid requests;
//! reloads and their statuses; RSS every second in kB.

#[path = "support/http1.rs"]
mod http1;
use http1::response;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a request is and what it must get.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Valid,
    Invalid,
    Oversize,
}

impl Kind {
    fn of(k: usize) -> Kind {
        if k % 5000 == 4999 {
            Kind::Oversize
        } else if k % 50 == 49 {
            Kind::Invalid
        } else {
            Kind::Valid
        }
    }
    fn expected(self) -> u16 {
        match self {
            Kind::Valid => 200,
            Kind::Invalid => 422,
            Kind::Oversize => 413,
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

fn request(addr: &str, path: &str, body: &[u8], close: bool) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

fn connect(addr: &str) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).ok();
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let w = s.try_clone().expect("clone");
    (w, BufReader::new(s))
}

fn rss_kb(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

struct Tally {
    count: [usize; 3],
    /// (kind, status) pairs that were not the expected status; status 0 = no response.
    wrong: Vec<(usize, u16)>,
    valid_ms: Vec<f64>,
}

// the soak scenario, read top to bottom: parse, drive, report
#[allow(clippy::too_many_lines)]
fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() != 8 {
        eprintln!(
            "usage: soak ADDR PID VALID_BODY INVALID_BODY RATE SECONDS CONNECTIONS ADMIN_TOKEN"
        );
        std::process::exit(2);
    }
    let addr = a[0].clone();
    let pid = a[1].clone();
    let valid = std::fs::read(&a[2]).expect("valid body file");
    let invalid = std::fs::read(&a[3]).expect("invalid body file");
    let rate: f64 = a[4].parse().expect("rate");
    let secs: f64 = a[5].parse().expect("seconds");
    let conns: usize = a[6].parse().expect("connections");
    let token = a[7].clone();
    let mut oversize = b"{\"customers\":[".to_vec();
    oversize.resize(5 * 1024 * 1024, b' ');
    let mut oversize_request = request(&addr, "/v1/score", &oversize, true);
    // the server answers from the declared length: sending all 5 MiB would only measure how
    // long the driver blocks writing into a connection the server already closed
    oversize_request.truncate(oversize_request.len() - oversize.len() + 64 * 1024);
    let bodies = Arc::new([
        request(&addr, "/v1/score", &valid, false),
        request(&addr, "/v1/score", &invalid, false),
        oversize_request,
    ]);
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs_f64(secs);
    let done = Arc::new(AtomicBool::new(false));

    // RSS every second, reload every 10 s
    let sampler = {
        let (pid, addr, done, token) = (pid.clone(), addr.clone(), done.clone(), token.clone());
        std::thread::spawn(move || {
            let mut rss = Vec::new();
            let mut reloads: Vec<u16> = Vec::new();
            let mut tick = 0u64;
            while !done.load(Ordering::Relaxed) {
                let due = start + Duration::from_secs(tick);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                rss.push(rss_kb(&pid));
                if tick > 0 && tick.is_multiple_of(10) {
                    let (mut w, mut r) = connect(&addr);
                    let req = format!(
                        "POST /v1/admin/reload HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                    let status = w
                        .write_all(req.as_bytes())
                        .ok()
                        .and_then(|_| response(&mut r))
                        .map_or(0, |x| x.0);
                    reloads.push(status);
                }
                tick += 1;
            }
            (rss, reloads)
        })
    };

    let per_conn = rate / conns as f64;
    let handles: Vec<_> = (0..conns)
        .map(|c| {
            let (addr, bodies) = (addr.clone(), bodies.clone());
            std::thread::spawn(move || {
                let mut t = Tally {
                    count: [0; 3],
                    wrong: Vec::new(),
                    valid_ms: Vec::new(),
                };
                let (mut w, mut r) = connect(&addr);
                let offset = c as f64 / rate;
                for k in 0.. {
                    let due = start + Duration::from_secs_f64(offset + k as f64 / per_conn);
                    if due >= end {
                        break;
                    }
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    // offset the mix per connection so every kind runs all the time
                    let kind = Kind::of(k + c * 7);
                    t.count[kind.index()] += 1;
                    let got = w
                        .write_all(&bodies[kind.index()])
                        .ok()
                        .and_then(|_| response(&mut r));
                    let status = got.map_or(0, |x| x.0);
                    if status != kind.expected() {
                        t.wrong.push((kind.index(), status));
                    }
                    if kind == Kind::Valid {
                        t.valid_ms.push(due.elapsed().as_secs_f64() * 1e3);
                    }
                    // the server closes after a refused oversize body (and on errors): reconnect
                    if got.is_none_or(|x| x.1) || kind == Kind::Oversize {
                        (w, r) = connect(&addr);
                    }
                }
                t
            })
        })
        .collect();
    let mut count = [0usize; 3];
    let mut wrong: Vec<(usize, u16)> = Vec::new();
    let mut lat = Vec::new();
    for h in handles {
        let t = h.join().expect("load thread");
        for (c, n) in count.iter_mut().zip(t.count) {
            *c += n;
        }
        wrong.extend(t.wrong);
        lat.extend(t.valid_ms);
    }
    let wall = start.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let (rss, reloads) = sampler.join().expect("sampler");
    lat.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let names = ["valid", "invalid", "oversize"];
    let kinds: Vec<String> = (0..3)
        .map(|i| {
            let mut bad: std::collections::BTreeMap<u16, usize> = Default::default();
            for (k, s) in &wrong {
                if *k == i {
                    *bad.entry(*s).or_default() += 1;
                }
            }
            let bad: Vec<String> = bad.iter().map(|(s, n)| format!("\"{s}\":{n}")).collect();
            format!(
                "\"{}\":{{\"requests\":{},\"unexpected\":{{{}}}}}",
                names[i],
                count[i],
                bad.join(",")
            )
        })
        .collect();
    let total: usize = count.iter().sum();
    println!(
        "{{\"rate\":{rate},\"achieved\":{:.1},\"seconds\":{wall:.1},{},\"valid_p50_ms\":{:.3},\"valid_p99_ms\":{:.3},\"valid_max_ms\":{:.3},\"reloads\":{:?},\"rss_kb\":{:?}}}",
        total as f64 / wall,
        kinds.join(","),
        q(0.5),
        q(0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        reloads,
        rss
    );
}
