//! API errors: one [`ApiCode`] per kind of failure (status and wire name in one place) and the
//! JSON error body `{"error":{"code":…,"message":…,"field":…,"details":…}}`.

use crate::scoring::ScoreError;
use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use serde_json::{Map, Value};

/// Every error code the API answers with; the name is what clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiCode {
    /// No bearer token where one is required (401).
    Unauthorized,
    /// A token that is not valid (403).
    Forbidden,
    /// A valid token without the scope the route needs (403).
    InsufficientScope,
    /// Admin endpoints without `CHURN_ADMIN_TOKEN` (403).
    AdminDisabled,
    /// Content-Type is not `application/json` (415).
    UnsupportedMediaType,
    /// The body exceeds the byte limit (413).
    BodyTooLarge,
    /// The body could not be read (400).
    BadBody,
    /// The body did not arrive within the body-read timeout (408).
    BodyTimeout,
    /// Bodies still arriving already hold the pending-body budget (503).
    ServerBusy,
    /// The body is not JSON (400).
    MalformedJson,
    /// JSON of the wrong shape (422).
    InvalidRequest,
    /// `customers` is empty (422).
    EmptyBatch,
    /// More customers than the batch limit (413).
    BatchTooLarge,
    /// A value that cannot be used, e.g. text in a numeric field (422).
    InvalidValue,
    /// An array or object where a scalar belongs (422).
    InvalidType,
    /// A model input is absent (422).
    MissingField,
    /// No model named and no default model (404).
    NoDefaultModel,
    /// No model with that name (404).
    UnknownModel,
    /// No such route (404).
    NotFound,
    /// The route exists for other methods (405).
    MethodNotAllowed,
    /// No model is loaded (503).
    NotReady,
    /// A reload left some bundle on its previous version (422).
    ReloadFailed,
    /// A reload did not finish within its timeout; the loaded models keep serving (503).
    ReloadTimeout,
    /// A field the request format does not have (422).
    UnknownField,
    /// No stored prediction for that customer (404).
    UnknownCustomer,
    /// The model is served without a model card for its version, so there is no report (404).
    NoModelCard,
    /// No such version or alias of the model (404).
    UnknownVersion,
    /// A registry change that is not allowed: the champion's removal, nothing to roll back to,
    /// a version that does not load, a registry file that does not hold together (409).
    RegistryConflict,
    /// The server runs without a prediction store (503).
    StoreDisabled,
    /// The prediction store did not answer (503).
    StoreUnavailable,
    /// A server-side failure (500).
    Internal,
}

impl ApiCode {
    /// HTTP status of this code.
    pub fn status(self) -> StatusCode {
        use ApiCode::*;
        match self {
            Unauthorized => StatusCode::UNAUTHORIZED,
            Forbidden | InsufficientScope | AdminDisabled => StatusCode::FORBIDDEN,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyTooLarge | BatchTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BadBody | MalformedJson => StatusCode::BAD_REQUEST,
            BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            InvalidRequest | EmptyBatch | InvalidValue | InvalidType | MissingField
            | ReloadFailed | UnknownField => StatusCode::UNPROCESSABLE_ENTITY,
            NoDefaultModel | UnknownModel | NotFound | UnknownCustomer | NoModelCard
            | UnknownVersion => StatusCode::NOT_FOUND,
            RegistryConflict => StatusCode::CONFLICT,
            StoreDisabled | StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            NotReady | ReloadTimeout | ServerBusy => StatusCode::SERVICE_UNAVAILABLE,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Wire name (`error.code`).
    pub fn as_str(self) -> &'static str {
        use ApiCode::*;
        match self {
            Unauthorized => "unauthorized",
            Forbidden => "forbidden",
            InsufficientScope => "insufficient_scope",
            AdminDisabled => "admin_disabled",
            UnsupportedMediaType => "unsupported_media_type",
            BodyTooLarge => "body_too_large",
            BadBody => "bad_body",
            BodyTimeout => "body_timeout",
            ServerBusy => "server_busy",
            MalformedJson => "malformed_json",
            InvalidRequest => "invalid_request",
            EmptyBatch => "empty_batch",
            BatchTooLarge => "batch_too_large",
            InvalidValue => "invalid_value",
            InvalidType => "invalid_type",
            MissingField => "missing_field",
            NoDefaultModel => "no_default_model",
            UnknownModel => "unknown_model",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            NotReady => "not_ready",
            ReloadFailed => "reload_failed",
            ReloadTimeout => "reload_timeout",
            UnknownField => "unknown_field",
            UnknownCustomer => "unknown_customer",
            NoModelCard => "no_model_card",
            UnknownVersion => "unknown_version",
            RegistryConflict => "registry_conflict",
            StoreDisabled => "store_disabled",
            StoreUnavailable => "store_unavailable",
            Internal => "internal",
        }
    }
}

/// A JSON API error.
#[derive(Debug)]
pub struct ApiError {
    code: ApiCode,
    message: String,
    field: Option<String>,
    details: Option<Value>,
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ApiCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            field: None,
            details: None,
        }
    }

    /// Name the request field at fault (e.g. `customers[3].tenure`).
    pub fn field(mut self, f: impl Into<String>) -> ApiError {
        self.field = Some(f.into());
        self
    }

    /// Attach structured details.
    pub fn details(mut self, d: Option<Value>) -> ApiError {
        self.details = d;
        self
    }

    /// The field path the error names, if any (`outcomes[2].at`).
    pub fn field_path(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The error's code.
    pub fn code(&self) -> ApiCode {
        self.code
    }

    /// The JSON response for this error.
    pub fn response(&self) -> HttpResponse {
        let mut e = Map::new();
        e.insert("code".into(), Value::from(self.code.as_str()));
        e.insert("message".into(), Value::from(self.message.clone()));
        if let Some(f) = &self.field {
            e.insert("field".into(), Value::from(f.clone()));
        }
        if let Some(d) = &self.details {
            e.insert("details".into(), d.clone());
        }
        let mut b = HttpResponse::build(self.code.status());
        if self.code == ApiCode::Unauthorized {
            b.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        b.json(serde_json::json!({ "error": e }))
    }

    /// A scoring error for customer `index` of a request: the field path names the customer.
    pub fn from_score(e: ScoreError, index: usize) -> ApiError {
        let field = e.field().map(|f| format!("customers[{index}].{f}"));
        let code = match e {
            ScoreError::MissingField { .. } => ApiCode::MissingField,
            _ => ApiCode::InvalidValue,
        };
        let mut err = ApiError::new(code, e.to_string());
        err.field = field;
        err
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        // the database's own text (which may quote the request's values or name tables) goes
        // to the operator's log, never to the client
        tracing::error!(error = %e, "store request failed");
        ApiError::new(
            ApiCode::StoreUnavailable,
            "the prediction store could not answer; try again later (the server log has the cause)",
        )
    }
}

impl From<crate::store::OutcomeError> for ApiError {
    /// A field of one event; the caller prefixes the field path with `outcomes[i]`.
    fn from(e: crate::store::OutcomeError) -> ApiError {
        let code = if e.missing {
            ApiCode::MissingField
        } else {
            ApiCode::InvalidValue
        };
        ApiError::new(code, format!("{}: {}", e.field, e.message)).field(e.field)
    }
}

impl ApiError {
    /// Prefix the field path, e.g. `at` → `outcomes[2].at`.
    pub fn within(mut self, prefix: &str) -> ApiError {
        self.field = Some(match self.field.take() {
            Some(f) => format!("{prefix}.{f}"),
            None => prefix.to_string(),
        });
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }
    fn error_response(&self) -> HttpResponse {
        self.response()
    }
}

/// What every handler returns.
pub type ApiResult = Result<HttpResponse, ApiError>;

impl From<crate::bundle::registry::RegistryError> for ApiError {
    fn from(e: crate::bundle::registry::RegistryError) -> ApiError {
        use crate::bundle::registry::RegistryError as R;
        match e {
            R::Unknown { .. } => ApiError::new(ApiCode::UnknownVersion, e.to_string()),
            R::BadAlias(_) => ApiError::new(ApiCode::InvalidValue, e.to_string()).field("alias"),
            R::Invalid { .. } | R::Refused { .. } => {
                ApiError::new(ApiCode::RegistryConflict, e.to_string())
            }
            // a file system failure is the operator's to see, with its path
            R::Io { .. } => {
                tracing::error!(error = %e, "model registry write failed");
                ApiError::new(
                    ApiCode::Internal,
                    "the model registry could not be read or written (the server log has the cause)",
                )
            }
        }
    }
}
