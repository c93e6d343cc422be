//! The API's routes: one module per resource, each holding the [`RouteSpec`]s of its routes — the
//! whole contract: method, path, access, OpenAPI operation and the handler it registers — next to
//! its handlers. [`all`] chains them; [`configure`] registers each behind the auth check of its
//! access, and `/openapi.json`, the one route that reads the whole table, lives here with it.
//!
//! Adding a route is one [`RouteSpec`] and one handler in the module of its resource (a new
//! resource: a new module, listed in `TABLE`). Resource modules share `lookup` (model and store)
//! and `params` (typed query strings), never each other.

mod admin;
mod customers;
mod evaluation;
mod health;
mod lookup;
mod models;
mod openapi;
mod outcomes;
mod params;
mod score;
pub mod spec;
mod versions;

pub use openapi::openapi_spec;
pub(crate) use score::shadow_score;
pub use spec::RouteSpec;

use super::auth;
use super::error::{ApiCode, ApiError};
use super::AppState;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, HttpResponse};
use spec::{Method, OK_JSON};

/// The routes of every resource module, and this module's own.
static TABLE: [&[RouteSpec]; 9] = [
    score::ROUTES,
    models::ROUTES,
    versions::ROUTES,
    outcomes::ROUTES,
    customers::ROUTES,
    evaluation::ROUTES,
    admin::ROUTES,
    health::ROUTES,
    ROUTES,
];

/// `/openapi.json`.
const ROUTES: &[RouteSpec] = &[RouteSpec {
    method: Method::Get,
    path: "/openapi.json",
    access: auth::ANY_TOKEN,
    operation_id: "getOpenApi",
    summary: "This API description (OpenAPI 3.1)",
    query: &[],
    body: None,
    ok: OK_JSON,
    errors: &[],
    register: |r| r.to(openapi),
}];

/// Every route the server answers.
pub fn all() -> impl Iterator<Item = &'static RouteSpec> {
    TABLE.iter().flat_map(|routes| routes.iter())
}

/// Register every route of [`all`] on an actix `App`, each behind the auth check of its
/// `access` and with a 405 for other methods.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for r in all() {
        let (method, access) = (r.method.as_str(), r.access);
        cfg.service(
            web::resource(r.path)
                .wrap(from_fn(move |req, next| {
                    auth::guard(method, access, req, next)
                }))
                .route((r.register)(r.method.route()))
                .default_service(web::to(move |req: HttpRequest| {
                    method_not_allowed(req, method)
                })),
        );
    }
}

/// `GET /openapi.json`.
async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(openapi_spec(all(), &state.current(), &state.config))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::Access;
    use std::collections::BTreeSet;

    #[test]
    fn operation_ids_and_method_paths_are_unique() {
        let mut ids = BTreeSet::new();
        let mut routes = BTreeSet::new();
        for r in all() {
            assert!(ids.insert(r.operation_id), "{} twice", r.operation_id);
            assert!(
                r.operation_id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{}",
                r.operation_id
            );
            assert!(routes.insert((r.method.as_str(), r.path)), "{}", r.path);
        }
        assert_eq!(ids.len(), 17);
    }

    #[test]
    fn every_route_documents_each_status_once() {
        for r in all() {
            let mut statuses = BTreeSet::new();
            for e in r.error_responses() {
                assert!((400..600).contains(&e.status), "{} {}", r.path, e.status);
                assert!(
                    statuses.insert(e.status),
                    "{} documents {} twice",
                    r.path,
                    e.status
                );
            }
            assert!(statuses.contains(&405), "{}", r.path);
            assert_eq!(
                statuses.contains(&401),
                r.access != Access::Open,
                "{}",
                r.path
            );
        }
    }
}
