//! `/openapi.json`: the OpenAPI 3.1 description, built from the route table ([`ROUTES`]) and the
//! default model's inputs, so it cannot drift from the router.

use super::auth::Access;
use super::routes::{Handler, RouteSpec, ROUTES};
use super::state::Registry;
use serde_json::{json, Map, Value};

/// Text that means a missing value, as a schema alternative (with `null`).
fn missing_schema() -> Value {
    let mut tokens: Vec<Value> = crate::ingest::value::MISSING_TOKENS
        .iter()
        .map(|t| Value::from(*t))
        .collect();
    tokens.push(Value::Null);
    json!({"enum": tokens})
}

/// One input as exactly what the server accepts, so a schema-valid request is a valid one.
fn input_schema(spec: &crate::features::InputSpec, max_field_bytes: usize) -> Value {
    use crate::features::InputEncoding;
    use crate::ingest::value::{BOOL_PAIRS, MAX_MAGNITUDE};
    use crate::ingest::FeatureKind;
    let mut v = match (&spec.kind, &spec.encoding) {
        (FeatureKind::Numeric, _) => json!({
            "anyOf": [
                {"type": "number", "minimum": -MAX_MAGNITUDE, "maximum": MAX_MAGNITUDE},
                {"type": "string", "pattern": "^\\s*[-+]?([0-9]{1,15}(\\.[0-9]*)?|\\.[0-9]+)\\s*$"},
                missing_schema(),
            ],
            "description": "a number within ±1e15 (numeric strings accepted); null or a missing token = missing, imputed"
        }),
        (
            FeatureKind::Boolean {
                true_token,
                false_token,
            },
            _,
        ) => {
            let mut allowed: Vec<Value> = vec![
                true.into(),
                false.into(),
                0.into(),
                1.into(),
                true_token.as_str().into(),
                false_token.as_str().into(),
            ];
            for (t, f) in BOOL_PAIRS {
                allowed.push((*t).into());
                allowed.push((*f).into());
            }
            json!({
                "anyOf": [{"enum": allowed}, missing_schema()],
                "description": format!("'{true_token}' / '{false_token}', true / false or 1 / 0")
            })
        }
        (FeatureKind::Categorical, InputEncoding::OneHot { levels, .. }) => json!({
            "anyOf": [
                {"type": "string", "maxLength": max_field_bytes / 4},
                {"type": "number", "minimum": -MAX_MAGNITUDE, "maximum": MAX_MAGNITUDE},
                {"type": "null"},
            ],
            "description": "a category; unseen values are scored as 'other' with a warning",
            "examples": levels,
        }),
        (FeatureKind::Categorical, _) => {
            json!({"anyOf": [{"type": "string", "maxLength": max_field_bytes / 4}, {"type": "null"}]})
        }
    };
    v["x-churn-type"] = Value::from(spec.kind.name());
    v
}

/// The OpenAPI 3.1 description, built from [`ROUTES`], the default model's inputs and the
/// server's limits (batch size, field length).
pub fn openapi_spec(reg: &Registry, config: &super::ServerConfig) -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.to_ascii_lowercase()] = operation(r);
    }
    let customer = customer_schema(reg, config.max_field_bytes);
    json!({
        "openapi": "3.1.0",
        "info": {"title": "churn", "version": env!("CARGO_PKG_VERSION"), "description": "Churn probability, reasons and warnings for customers."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "one of CHURN_API_TOKENS (only when set)"},
                "admin": {"type": "http", "scheme": "bearer", "description": "CHURN_ADMIN_TOKEN"}
            },
            "schemas": {
                "Customer": customer,
                "OutcomesRequest": {"type": "object", "required": ["outcomes"], "properties": {"outcomes": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["customer_id", "event", "at"], "properties": {
                    "customer_id": {"type": ["string", "number"]},
                    "event": {"enum": ["churned", "retained", "action_taken", "purchase", "survey"]},
                    "at": {"type": "string", "description": "ISO-8601 time, at most 5 minutes in the future"},
                    "prediction_id": {"type": "string"}, "action": {"type": "string", "description": "action id of the playbook (action_taken)"},
                    "cost": {"type": "number", "minimum": 0}, "amount": {"type": "number", "description": "purchase amount"},
                    "score": {"type": "integer", "minimum": 0, "maximum": 10, "description": "survey answer (NPS)"},
                    "external_id": {"type": "string", "description": "idempotency key"}
                }, "additionalProperties": false}}}},
                "ScoreRequest": {"type": "object", "required": ["customers"], "properties": {"customers": {"type": "array", "minItems": 1, "maxItems": config.max_batch, "items": {"$ref": "#/components/schemas/Customer"}}}},
                "ScoreResult": {"type": "object", "properties": {
                    "customer_id": {"type": ["string", "number", "boolean", "null"]},
                    "churn_probability": {"type": "number", "minimum": 0, "maximum": 1},
                    "probability_interval": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "description": "95% Wilson interval of the leaf, calibrated"},
                    "predicted_churn": {"type": "boolean", "description": "churn_probability >= the model's threshold"},
                    "leaf_support": {"type": "integer", "description": "training customers in the leaf"},
                    "contact": {"type": "boolean", "description": "the one contact decision: treatment group and a top recommendation with positive expected net value (models with a playbook)"},
                    "reasons": {"type": "array", "description": "absent with detail=probability; up to three inputs that raised the risk most, largest first; all effects are positive. Single tree: each input's net contribution along the decision path (probability before calibration). Boosted trees: the input's exact TreeSHAP contribution (log-odds), one-hot levels folded into their input", "items": {"$ref": "#/components/schemas/Reason"}},
                    "protective": {"type": "array", "description": "up to three inputs that lowered the risk most, most negative first", "items": {"$ref": "#/components/schemas/Reason"}},
                    "levers": {"type": "array", "description": "only with detail=full (the default); changes of actionable inputs to value combinations seen in training; risk_after is the model's estimate for similar customers, not a promised effect", "items": {"type": "object"}},
                    "warnings": {"type": "array", "items": {"type": "object", "properties": {"kind": {"enum": ["unseen_category", "rare_category", "imputed"]}, "field": {"type": "string"}}}}
                }},
                "Reason": {"type": "object", "properties": {"condition": {"type": "string"}, "field": {"type": "string"}, "effect": {"type": "number"}}},
                "ScoreResponse": {"type": "object", "properties": {
                    "model": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}}},
                    "results": {"type": "array", "items": {"$ref": "#/components/schemas/ScoreResult"}}
                }},
                "Error": {"type": "object", "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}, "details": {}
                }}}}
            }
        }
    })
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The operation object of one route: summary, responses, parameters, body, security.
fn operation(r: &RouteSpec) -> Value {
    let mut responses = Map::new();
    let ok = match r.handler {
        Handler::ScoreDefault | Handler::ScoreNamed => {
            json!({"description": "scores in input order", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScoreResponse"}}}})
        }
        Handler::Metrics => {
            json!({"description": "Prometheus text format", "content": {"text/plain": {}}})
        }
        Handler::ModelReport => {
            json!({"description": "the report: one self-contained HTML page (inline SVG and CSS, no scripts)", "content": {"text/html": {}}})
        }
        _ => json!({"description": "OK", "content": {"application/json": {}}}),
    };
    responses.insert("200".into(), ok);
    if matches!(
        r.handler,
        Handler::ScoreDefault | Handler::ScoreNamed | Handler::Outcomes
    ) {
        responses.insert(
            "408".into(),
            error_response("the body did not arrive within the body-read timeout"),
        );
        responses.insert(
            "503".into(),
            error_response("bodies still arriving hold the pending-body budget: retry shortly (or the store is unavailable)"),
        );
    }
    if matches!(r.handler, Handler::ScoreDefault | Handler::ScoreNamed) {
        responses.insert("400".into(), error_response("malformed JSON"));
        responses.insert("413".into(), error_response("body or batch too large"));
        responses.insert(
            "415".into(),
            error_response("Content-Type is not application/json"),
        );
        responses.insert("422".into(), error_response("wrong types, infinite values or missing fields (text 'NaN' is a missing value); `field` names the culprit, e.g. customers[3].tenure"));
        responses.insert("404".into(), error_response("unknown model"));
    }
    if matches!(r.handler, Handler::GetModel) {
        responses.insert("404".into(), error_response("unknown model"));
    }
    if matches!(r.handler, Handler::ModelReport) {
        responses.insert(
            "404".into(),
            error_response("unknown model, or no model card for the served version"),
        );
    }
    if matches!(r.handler, Handler::Reload) {
        responses.insert(
            "422".into(),
            error_response("a bundle failed to load; the previous version keeps serving"),
        );
        responses.insert(
            "503".into(),
            error_response("the reload did not finish in time; the loaded models keep serving"),
        );
    }
    if matches!(r.handler, Handler::Outcomes) {
        responses.insert("400".into(), error_response("malformed JSON"));
        responses.insert("413".into(), error_response("body or batch too large"));
        responses.insert(
            "415".into(),
            error_response("Content-Type is not application/json"),
        );
        responses.insert(
            "422".into(),
            error_response(
                "an invalid event; `field` names it, e.g. outcomes[2].at; nothing was stored",
            ),
        );
    }
    if matches!(
        r.handler,
        Handler::Customer | Handler::Worklist | Handler::Evaluation | Handler::Kpis
    ) {
        responses.insert("404".into(), error_response("unknown customer or model"));
        responses.insert(
            "422".into(),
            error_response("invalid query parameter; `field` names it"),
        );
    }
    if matches!(
        r.handler,
        Handler::Outcomes
            | Handler::Customer
            | Handler::Worklist
            | Handler::Evaluation
            | Handler::Kpis
    ) {
        // outcomes already document 503 for the pending-body budget, naming the store as well
        let why = if matches!(r.handler, Handler::Evaluation | Handler::Kpis) {
            "no prediction store, it did not answer, or another evaluation is running (one at a time)"
        } else {
            "no prediction store, or it did not answer"
        };
        responses
            .entry("503")
            .or_insert_with(|| error_response(why));
    }
    if matches!(r.handler, Handler::Readyz) {
        responses.insert("503".into(), error_response("no model loaded"));
    }
    if r.access != Access::Open {
        responses.insert("401".into(), error_response("missing bearer token"));
        responses.insert(
            "403".into(),
            error_response("invalid token, or admin endpoints disabled"),
        );
    }
    responses.insert("405".into(), error_response("method not allowed"));
    let mut op = json!({"summary": r.summary, "responses": responses});
    let mut params: Vec<Value> = ["name", "id"]
        .into_iter()
        .filter(|param| r.path.contains(&format!("{{{param}}}")))
        .map(|param| json!({"name": param, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    let query: &[(&str, &str)] = match r.handler {
        Handler::Evaluation => &[
            ("model", "model name (default: the default model)"),
            (
                "from",
                "predictions scored on or after (YYYY-MM-DD or ISO-8601)",
            ),
            ("to", "predictions scored before"),
            ("as_of", "judge labels as of (default: now)"),
            (
                "horizon_days",
                "label horizon in days (default: the model's, else 90)",
            ),
        ],
        Handler::Kpis => &[
            (
                "model",
                "model whose predictions define customers and segments",
            ),
            (
                "from",
                "period start (default: the last full month; give both or neither)",
            ),
            ("to", "period end, exclusive"),
            ("by", "`segment`: add one row per segment"),
            (
                "margin_rate",
                "share of revenue that is margin, for CLV (default 0.3)",
            ),
            (
                "discount_rate",
                "discount rate per period, for CLV (default 0.01)",
            ),
        ],
        Handler::ScoreDefault | Handler::ScoreNamed => &[(
            "detail",
            "`full` (default): everything; `advice`: all but levers; `probability`: probability, interval, leaf support, segment and warnings only (no reasons, advice or levers are computed, unless the store is on: then the advice is still computed and recorded)",
        )],
        _ => &[],
    };
    params.extend(query.iter().map(|(name, description)| json!({"name": name, "in": "query", "required": false, "description": description, "schema": {"type": "string"}})));
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    if matches!(r.handler, Handler::ScoreDefault | Handler::ScoreNamed) {
        op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScoreRequest"}}}});
    }
    if matches!(r.handler, Handler::Outcomes) {
        op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OutcomesRequest"}}}});
    }
    match r.access {
        Access::Open => {}
        Access::Api => op["security"] = json!([{"bearer": []}]),
        Access::Admin => op["security"] = json!([{"admin": []}]),
    }
    op
}

/// The `Customer` schema: the default model's raw inputs.
fn customer_schema(reg: &Registry, max_field_bytes: usize) -> Value {
    let default = reg.default.as_ref().and_then(|d| reg.models.get(d));
    match default {
        Some(m) => {
            let b = &m.scorer.bundle;
            let mut props = Map::new();
            if let Some(id) = &b.id_column {
                props.insert(id.clone(), json!({"anyOf": [{"type": "string", "maxLength": max_field_bytes / 4}, {"type": "number"}], "description": "customer id (echoed as customer_id)"}));
            }
            for i in &b.encoder.inputs {
                props.insert(i.name.clone(), input_schema(i, max_field_bytes));
            }
            json!({
                "type": "object",
                "description": format!("raw columns as in training data of the default model '{}'; every input is required (null = missing)", b.name),
                "properties": props,
                "propertyNames": {"maxLength": max_field_bytes / 4},
                "required": b.encoder.inputs.iter().map(|i| i.name.clone()).collect::<Vec<_>>(),
            })
        }
        None => json!({"type": "object", "description": "raw columns as in training data"}),
    }
}
