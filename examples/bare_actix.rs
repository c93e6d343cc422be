//! The physical limit for `churn-serve`: a bare actix-web handler that only parses the same JSON
//! request (`{"customers":[{...}]}`) and answers a constant. Used by `benches/peers/http_bench.sh`.
//!
//! Run: `cargo run --release --example bare_actix -- 127.0.0.1:18090 1` (address, workers).

use actix_web::{web, App, HttpResponse, HttpServer};
use serde_json::{Map, Value};

#[derive(serde::Deserialize)]
struct ScoreRequest {
    customers: Vec<Map<String, Value>>,
}

async fn score(body: web::Bytes) -> HttpResponse {
    match serde_json::from_slice::<ScoreRequest>(&body) {
        Ok(r) => HttpResponse::Ok().json(serde_json::json!({ "results": r.customers.len() })),
        Err(e) => HttpResponse::BadRequest().body(e.to_string()),
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:18090".into());
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(1);
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(|| App::new().route("/v1/score", web::post().to(score)))
            .workers(workers)
            .bind(&addr)?;
        eprintln!("bare_actix listening on http://{addr}");
        server.run().await
    })
}
