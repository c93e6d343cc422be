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

/// What a token may do. A route names the scopes that admit it; a token carries a set of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Score customers (`POST /v1/score`, `/v1/models/{name}/score`).
    Score,
    /// Read what the service knows: stored predictions and inputs, the worklist, evaluation,
    /// KPIs, model reports and metrics.
    Read,
    /// Report outcomes (`POST /v1/outcomes`), which move learned save rates and the worklist.
    Outcomes,
}

impl Scope {
    /// Every scope, in the order of [`Scope::name`]'s documentation.
    pub const ALL: [Scope; 3] = [Scope::Score, Scope::Read, Scope::Outcomes];

    /// The scope's name in configuration, errors and the API description.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Score => "score",
            Scope::Read => "read",
            Scope::Outcomes => "outcomes",
        }
    }

    /// The environment variable whose tokens carry exactly this scope.
    pub fn env_var(self) -> &'static str {
        match self {
            Scope::Score => "CHURN_SCORE_TOKENS",
            Scope::Read => "CHURN_READ_TOKENS",
            Scope::Outcomes => "CHURN_OUTCOMES_TOKENS",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Open (liveness and readiness probes: they reveal only that the process is up and ready).
    Open,
    /// A bearer token with any of these scopes, when API tokens are configured (without any
    /// token configured the API is open, as before scopes existed).
    Api(&'static [Scope]),
    /// Bearer token `CHURN_ADMIN_TOKEN`.
    Admin,
}

/// Any valid API token: what a client needs to know the service (models, inputs, API
/// description).
pub const ANY_TOKEN: Access = Access::Api(&Scope::ALL);

/// The accepted tokens, kept as sha256 digests with their scopes and compared in constant time.
#[derive(Debug, Default)]
pub struct Tokens {
    api: Vec<([u8; 32], u8)>,
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
    /// API tokens with their scopes (none: the API is open) and the admin token (none: admin
    /// routes disabled). A token listed more than once gets the union of its scopes.
    pub fn new(api: &[(String, Vec<Scope>)], admin: Option<&str>) -> Tokens {
        let mut tokens: Vec<([u8; 32], u8)> = Vec::new();
        for (t, scopes) in api {
            let d = digest(t);
            let bits = scopes.iter().fold(0, |acc, s| acc | s.bit());
            match tokens.iter_mut().find(|(x, _)| *x == d) {
                Some((_, b)) => *b |= bits,
                None => tokens.push((d, bits)),
            }
        }
        Tokens {
            api: tokens,
            admin: admin.map(digest),
        }
    }

    /// The scopes of the token this request carries (0 when it matches none); every token is
    /// compared, without stopping early.
    fn scopes_of(&self, h: &[u8; 32]) -> u8 {
        self.api
            .iter()
            .fold(0, |acc, (t, bits)| acc | (bits * u8::from(ct_eq(t, h))))
    }

    /// May this request call a route with `access`?
    pub fn check(&self, access: Access, req: &ServiceRequest) -> Result<(), ApiError> {
        match access {
            Access::Open => Ok(()),
            Access::Api(_) if self.api.is_empty() => Ok(()),
            Access::Api(needed) => {
                let h = bearer(req).ok_or_else(missing_token)?;
                let have = self.scopes_of(&h);
                if have == 0 {
                    return Err(ApiError::new(
                        ApiCode::Forbidden,
                        "the bearer token is not valid",
                    ));
                }
                if needed.iter().any(|s| have & s.bit() != 0) {
                    Ok(())
                } else {
                    let names: Vec<&str> = needed.iter().map(|s| s.name()).collect();
                    Err(ApiError::new(
                        ApiCode::InsufficientScope,
                        format!(
                            "this token may not call this route: it needs the scope {}",
                            names.join(" or ")
                        ),
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
