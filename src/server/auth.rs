//! Bearer-token checks, driven by the [`Access`] of each route's spec: the middleware that
//! [`super::routes::configure`] puts in front of every resource is the only place auth happens, so
//! routing, auth and `/openapi.json` cannot drift apart.

use super::error::{ApiCode, ApiError};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{web, Error};
use sha2::{Digest, Sha256};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Open (liveness and readiness probes: they reveal only that the process is up and ready).
    Open,
    /// Bearer token from `CHURN_API_TOKENS` when set: the API, and also the metrics (counts by
    /// risk band and model are business figures) and the API description (it lists every input
    /// and categorical level of the default model).
    Api,
    /// Bearer token `CHURN_ADMIN_TOKEN`.
    Admin,
}

/// The accepted tokens, kept as sha256 digests and compared in constant time.
#[derive(Debug, Default)]
pub struct Tokens {
    api: Vec<[u8; 32]>,
    admin: Option<[u8; 32]>,
}

fn digest(t: &str) -> [u8; 32] {
    Sha256::digest(t.as_bytes()).into()
}

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn bearer(req: &ServiceRequest) -> Option<[u8; 32]> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = v
        .strip_prefix("Bearer ")
        .or_else(|| v.strip_prefix("bearer "))?;
    Some(digest(t.trim()))
}

fn missing_token() -> ApiError {
    ApiError::new(
        ApiCode::Unauthorized,
        "missing bearer token (Authorization: Bearer TOKEN)",
    )
}

impl Tokens {
    /// Tokens for `/v1/*` (none: open) and the admin token (none: admin routes disabled).
    pub fn new(api: &[String], admin: Option<&str>) -> Tokens {
        Tokens {
            api: api.iter().map(|t| digest(t)).collect(),
            admin: admin.map(digest),
        }
    }

    /// May this request call a route with `access`?
    pub fn check(&self, access: Access, req: &ServiceRequest) -> Result<(), ApiError> {
        match access {
            Access::Open => Ok(()),
            Access::Api if self.api.is_empty() => Ok(()),
            Access::Api => {
                let h = bearer(req).ok_or_else(missing_token)?;
                // compare against every token without stopping early
                if self.api.iter().fold(false, |acc, t| acc | ct_eq(t, &h)) {
                    Ok(())
                } else {
                    Err(ApiError::new(
                        ApiCode::Forbidden,
                        "the bearer token is not valid",
                    ))
                }
            }
            Access::Admin => {
                let Some(admin) = &self.admin else {
                    return Err(ApiError::new(
                        ApiCode::AdminDisabled,
                        "admin endpoints are disabled (set CHURN_ADMIN_TOKEN)",
                    ));
                };
                let h = bearer(req).ok_or_else(missing_token)?;
                if ct_eq(admin, &h) {
                    Ok(())
                } else {
                    Err(ApiError::new(
                        ApiCode::Forbidden,
                        "the admin token is not valid",
                    ))
                }
            }
        }
    }
}

/// Middleware body for a route taking `method` with `access`: answer with the auth error, or
/// pass the request on. Another method passes through to the route's 405 answer (it reaches no
/// handler).
pub async fn guard(
    method: &'static str,
    access: Access,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let verdict = match req.app_data::<web::Data<Tokens>>() {
        _ if req.method().as_str() != method => Ok(()),
        Some(tokens) => tokens.check(access, &req),
        None => Err(ApiError::new(ApiCode::Internal, "server state missing")),
    };
    match verdict {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(e) => Ok(req.into_response(e.response()).map_into_right_body()),
    }
}
