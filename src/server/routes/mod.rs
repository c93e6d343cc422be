//! The route table — the single truth for routing, auth and `/openapi.json` — and one module per
//! resource. A new route is one [`RouteSpec`] in [`ROUTES`], one [`Handler`] variant and a thin
//! async function in the module of its resource.

mod admin;
mod customers;
mod evaluation;
mod health;
mod models;
mod outcomes;
mod score;

use super::auth::{self, Access};
use super::error::{ApiCode, ApiError};
use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, HttpResponse};

/// The function behind a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// `POST /v1/score`.
    ScoreDefault,
    /// `POST /v1/models/{name}/score`.
    ScoreNamed,
    /// `GET /v1/models`.
    ListModels,
    /// `GET /v1/models/{name}`.
    GetModel,
    /// `GET /v1/models/{name}/report`.
    ModelReport,
    /// `POST /v1/admin/reload`.
    Reload,
    /// `GET /healthz`.
    Healthz,
    /// `GET /readyz`.
    Readyz,
    /// `GET /metrics`.
    Metrics,
    /// `GET /openapi.json`.
    OpenApi,
    /// `POST /v1/outcomes`.
    Outcomes,
    /// `GET /v1/customers/{id}`.
    Customer,
    /// `GET /v1/customers`.
    Worklist,
    /// `GET /v1/evaluation`.
    Evaluation,
    /// `GET /v1/kpis`.
    Kpis,
}

/// One route of the API: the single table both the router and `/openapi.json` are built from.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: &'static str,
    /// Path pattern.
    pub path: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// Access rule.
    pub access: Access,
    /// The function answering it.
    pub handler: Handler,
}

/// Every route the server answers.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: "POST",
        path: "/v1/score",
        summary: "Score customers with the default model",
        access: Access::Api,
        handler: Handler::ScoreDefault,
    },
    RouteSpec {
        method: "POST",
        path: "/v1/models/{name}/score",
        summary: "Score customers with a named model",
        access: Access::Api,
        handler: Handler::ScoreNamed,
    },
    RouteSpec {
        method: "GET",
        path: "/v1/models",
        summary: "List the models being served",
        access: Access::Api,
        handler: Handler::ListModels,
    },
    RouteSpec {
        method: "GET",
        path: "/v1/models/{name}",
        summary: "One model with its model card",
        access: Access::Api,
        handler: Handler::GetModel,
    },
    RouteSpec {
        method: "GET",
        path: "/v1/models/{name}/report",
        summary: "The model's report: one self-contained HTML page (text/html)",
        access: Access::Api,
        handler: Handler::ModelReport,
    },
    RouteSpec {
        method: "POST",
        path: "/v1/outcomes",
        summary: "Record outcome events (churned, retained, action_taken, purchase, survey); all or nothing, idempotent by external_id",
        access: Access::Api,
        handler: Handler::Outcomes,
    },
    RouteSpec {
        method: "GET",
        path: "/v1/customers/{id}",
        summary: "A customer's latest stored prediction (?model=NAME)",
        access: Access::Api,
        handler: Handler::Customer,
    },
    RouteSpec {
        method: "GET",
        path: "/v1/customers",
        summary: "Worklist: latest prediction per customer by expected loss, keyset-paginated (?model, risk_band, segment, treatment, limit, cursor)",
        access: Access::Api,
        handler: Handler::Worklist,
    },
    RouteSpec {
        method: "GET",
        path: "/v1/evaluation",
        summary: "Evaluation of a model from the store: realised and expected performance, lift of each action against the control group, learned save rates (?model, from, to, as_of, horizon_days)",
        access: Access::Api,
        handler: Handler::Evaluation,
    },
    RouteSpec {
        method: "GET",
        path: "/v1/kpis",
        summary: "Retention KPIs of a period (default: the last full month): retention, churn, repurchase, NPS, average order value, CLV (?model, from, to, by=segment, margin_rate, discount_rate)",
        access: Access::Api,
        handler: Handler::Kpis,
    },
    RouteSpec {
        method: "POST",
        path: "/v1/admin/reload",
        summary: "Reload bundles from disk and swap atomically",
        access: Access::Admin,
        handler: Handler::Reload,
    },
    RouteSpec {
        method: "GET",
        path: "/healthz",
        summary: "Liveness: the process is up",
        access: Access::Open,
        handler: Handler::Healthz,
    },
    RouteSpec {
        method: "GET",
        path: "/readyz",
        summary: "Readiness: at least one model is loaded",
        access: Access::Open,
        handler: Handler::Readyz,
    },
    RouteSpec {
        method: "GET",
        path: "/metrics",
        summary: "Prometheus metrics",
        access: Access::Api,
        handler: Handler::Metrics,
    },
    RouteSpec {
        method: "GET",
        path: "/openapi.json",
        summary: "This API description (OpenAPI 3.1)",
        access: Access::Api,
        handler: Handler::OpenApi,
    },
];

/// Register all routes of [`ROUTES`] on an actix `App`, each behind the auth check of its
/// `access`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for r in ROUTES {
        let route = match r.method {
            "POST" => web::post(),
            _ => web::get(),
        };
        let route = match r.handler {
            Handler::ScoreDefault => route.to(score::score_default),
            Handler::ScoreNamed => route.to(score::score_named),
            Handler::ListModels => route.to(models::list_models),
            Handler::GetModel => route.to(models::get_model),
            Handler::ModelReport => route.to(models::model_report),
            Handler::Reload => route.to(admin::reload),
            Handler::Healthz => route.to(health::healthz),
            Handler::Readyz => route.to(health::readyz),
            Handler::Metrics => route.to(health::metrics),
            Handler::OpenApi => route.to(health::openapi),
            Handler::Outcomes => route.to(outcomes::post_outcomes),
            Handler::Customer => route.to(customers::get_customer),
            Handler::Worklist => route.to(customers::worklist),
            Handler::Evaluation => route.to(evaluation::get_evaluation),
            Handler::Kpis => route.to(evaluation::get_kpis),
        };
        cfg.service(
            web::resource(r.path)
                .wrap(from_fn(move |req, next| {
                    auth::guard(r.method, r.access, req, next)
                }))
                .route(route)
                .default_service(web::to(move |req: HttpRequest| {
                    method_not_allowed(req, r.method)
                })),
        );
    }
}

/// Any path no route matches.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::new(
        ApiCode::NotFound,
        format!("no route {} {}", req.method(), req.path()),
    )
    .response()
}

/// 405 with the `Allow` header naming the route's method (RFC 9110).
async fn method_not_allowed(req: HttpRequest, allowed: &'static str) -> HttpResponse {
    let mut res = ApiError::new(
        ApiCode::MethodNotAllowed,
        format!("{} is not allowed on {}", req.method(), req.path()),
    )
    .response();
    res.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static(allowed),
    );
    res
}
