//! [`RouteSpec`]: the whole contract of one route — method, path, access, OpenAPI operation
//! (summary, query parameters, body, responses) and the handler it registers — and the responses
//! every route shares, so the router, the auth middleware and `/openapi.json` read one value.

use crate::server::auth::Access;

/// An HTTP method the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
}

impl Method {
    /// The method's name, e.g. `GET`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }

    /// An actix route for this method (the handler is attached by [`RouteSpec::register`]).
    pub fn route(self) -> actix_web::Route {
        match self {
            Method::Get => actix_web::web::get(),
            Method::Post => actix_web::web::post(),
        }
    }
}

/// The JSON type of a query parameter's value, as OpenAPI describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// Text.
    String,
    /// A whole number.
    Integer,
    /// A number.
    Number,
}

impl ParamType {
    /// The JSON Schema type name.
    pub const fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
        }
    }
}

/// One query parameter of a route (its value is parsed by the route's query struct).
#[derive(Debug, Clone, Copy)]
pub struct QueryParam {
    /// Name, e.g. `detail`.
    pub name: &'static str,
    /// What it does, with its default.
    pub description: &'static str,
    /// Whether a request must give it.
    pub required: bool,
    /// Its value's type.
    pub schema: ParamType,
}

impl QueryParam {
    /// An optional text parameter.
    pub const fn optional(name: &'static str, description: &'static str) -> QueryParam {
        QueryParam {
            name,
            description,
            required: false,
            schema: ParamType::String,
        }
    }

    /// An optional whole-number parameter.
    pub const fn integer(name: &'static str, description: &'static str) -> QueryParam {
        QueryParam {
            name,
            description,
            required: false,
            schema: ParamType::Integer,
        }
    }
}

/// A JSON answer following component schema `schema`.
pub const fn ok_schema(schema: &'static str) -> Success {
    Success {
        description: "OK",
        content_type: "application/json",
        schema: Some(schema),
    }
}

/// The success (200) response of a route.
#[derive(Debug, Clone, Copy)]
pub struct Success {
    /// What it holds.
    pub description: &'static str,
    /// Its media type, e.g. `application/json`.
    pub content_type: &'static str,
    /// The component schema it follows (`None`: not described).
    pub schema: Option<&'static str>,
}

/// A JSON answer with no described schema.
pub const OK_JSON: Success = Success {
    description: "OK",
    content_type: "application/json",
    schema: None,
};

/// An error response of a route: the status and when it happens (the body is always the JSON
/// error, `Error` in the OpenAPI components).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorResponse {
    /// HTTP status.
    pub status: u16,
    /// When it happens.
    pub description: &'static str,
}

impl ErrorResponse {
    /// The error response `status` with its description.
    pub const fn new(status: u16, description: &'static str) -> ErrorResponse {
        ErrorResponse {
            status,
            description,
        }
    }
}

const fn error(status: u16, description: &'static str) -> ErrorResponse {
    ErrorResponse::new(status, description)
}

/// 404: the named model is not served.
pub const UNKNOWN_MODEL: ErrorResponse = error(404, "unknown model");
/// 404 of the store's read routes.
pub const UNKNOWN_CUSTOMER_OR_MODEL: ErrorResponse = error(404, "unknown customer or model");
/// 422 of routes that read query parameters.
pub const INVALID_QUERY: ErrorResponse = error(422, "invalid query parameter; `field` names it");
/// 503 of routes that need the prediction store.
pub const NO_STORE: ErrorResponse = error(503, "no prediction store, or it did not answer");

/// Every route with a JSON body answers these from the body reader (`json::read_body`).
const BODY_ERRORS: [ErrorResponse; 5] = [
    error(400, "malformed JSON"),
    error(408, "the body did not arrive within the body-read timeout"),
    error(413, "body or batch too large"),
    error(415, "Content-Type is not application/json"),
    error(
        503,
        "bodies still arriving hold the pending-body budget: retry shortly (or the store is unavailable)",
    ),
];

/// Every route behind a token answers these from the auth middleware.
const AUTH_ERRORS: [ErrorResponse; 2] = [
    error(401, "missing bearer token"),
    error(
        403,
        "invalid token, a token without the scope the route needs (insufficient_scope), or admin endpoints disabled",
    ),
];

/// Every route answers other methods with 405.
const WRONG_METHOD: ErrorResponse = error(405, "method not allowed");

/// One route of the API: everything the router, the auth middleware and `/openapi.json` need.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    /// HTTP method.
    pub method: Method,
    /// Path pattern; `{name}` segments are path parameters.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Unique OpenAPI `operationId`, e.g. `scoreDefault`.
    pub operation_id: &'static str,
    /// One-line description.
    pub summary: &'static str,
    /// Query parameters.
    pub query: &'static [QueryParam],
    /// Component schema of the required JSON body (`None`: no body).
    pub body: Option<&'static str>,
    /// The 200 response.
    pub ok: Success,
    /// The route's own error responses; those of the body reader, the auth middleware and the
    /// router are added by [`RouteSpec::error_responses`].
    pub errors: &'static [ErrorResponse],
    /// Attach the handler to the route, e.g. `|r| r.to(score::score_default)`.
    pub register: fn(actix_web::Route) -> actix_web::Route,
}

impl RouteSpec {
    /// Every error response of the route: its own, then the body reader's (routes with a body),
    /// the auth middleware's (routes behind a token) and the router's 405.
    pub fn error_responses(&self) -> Vec<ErrorResponse> {
        let body: &[ErrorResponse] = if self.body.is_some() {
            &BODY_ERRORS
        } else {
            &[]
        };
        let auth: &[ErrorResponse] = if self.access == Access::Open {
            &[]
        } else {
            &AUTH_ERRORS
        };
        let mut all = self.errors.to_vec();
        all.extend(body.iter().chain(auth).chain([&WRONG_METHOD]));
        all
    }

    /// The names of the path parameters (`{name}` segments), in path order.
    pub fn path_params(&self) -> impl Iterator<Item = &'static str> {
        self.path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
    }
}
