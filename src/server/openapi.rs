//! `/openapi.json`: the OpenAPI 3.1 description, built from the route table ([`ROUTES`]) and the
//! default model's inputs, so it cannot drift from the router.

use super::routes::{Access, Handler, RouteSpec, ROUTES};
use super::state::Registry;
use serde_json::{json, Map, Value};

fn input_schema(spec: &crate::features::InputSpec) -> Value {
    use crate::features::InputEncoding;
    use crate::ingest::FeatureKind;
    let mut v = match (&spec.kind, &spec.encoding) {
        (FeatureKind::Numeric, _) => serde_json::json!({
            "type": ["number", "string", "null"],
            "description": "a number (numeric strings accepted); null = missing, imputed"
        }),
        (
            FeatureKind::Boolean {
                true_token,
                false_token,
            },
            _,
        ) => serde_json::json!({
            "type": ["boolean", "string", "number", "null"],
            "description": format!("'{true_token}' / '{false_token}', true / false or 1 / 0")
        }),
        (FeatureKind::Categorical, InputEncoding::OneHot { levels, .. }) => serde_json::json!({
            "type": ["string", "number", "null"],
            "description": "a category; unseen values are scored as 'other' with a warning",
            "examples": levels,
        }),
        (FeatureKind::Categorical, _) => serde_json::json!({"type": ["string", "null"]}),
    };
    v["x-churn-type"] = Value::from(spec.kind.name());
    v
}

/// The OpenAPI 3.1 description, built from [`ROUTES`] and the default model's inputs.
pub fn openapi_spec(reg: &Registry) -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.to_ascii_lowercase()] = operation(r);
    }
    let customer = customer_schema(reg);
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
                "ScoreRequest": {"type": "object", "required": ["customers"], "properties": {"customers": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/Customer"}}}},
                "ScoreResult": {"type": "object", "properties": {
                    "customer_id": {"type": ["string", "number"]},
                    "churn_probability": {"type": "number", "minimum": 0, "maximum": 1},
                    "probability_interval": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "description": "95% Wilson interval of the leaf, calibrated"},
                    "predicted_churn": {"type": "boolean", "description": "churn_probability >= the model's threshold"},
                    "leaf_support": {"type": "integer", "description": "training customers in the leaf"},
                    "reasons": {"type": "array", "items": {"type": "object", "properties": {"condition": {"type": "string"}, "field": {"type": "string"}, "effect": {"type": "number"}}}},
                    "warnings": {"type": "array", "items": {"type": "object", "properties": {"kind": {"enum": ["unseen_category", "imputed"]}, "field": {"type": "string"}}}}
                }},
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
    if matches!(r.handler, Handler::Customer | Handler::Worklist) {
        responses.insert("404".into(), error_response("unknown customer or model"));
        responses.insert(
            "422".into(),
            error_response("invalid query parameter; `field` names it"),
        );
    }
    if matches!(
        r.handler,
        Handler::Outcomes | Handler::Customer | Handler::Worklist
    ) {
        responses.insert(
            "503".into(),
            error_response("no prediction store, or it did not answer"),
        );
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
    if r.path.contains("{name}") {
        op["parameters"] =
            json!([{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}]);
    }
    if matches!(r.handler, Handler::ScoreDefault | Handler::ScoreNamed) {
        op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ScoreRequest"}}}});
    }
    match r.access {
        Access::Open => {}
        Access::Api => op["security"] = json!([{"bearer": []}]),
        Access::Admin => op["security"] = json!([{"admin": []}]),
    }
    op
}

/// The `Customer` schema: the default model's raw inputs.
fn customer_schema(reg: &Registry) -> Value {
    let default = reg.default.as_ref().and_then(|d| reg.models.get(d));
    match default {
        Some(m) => {
            let b = &m.scorer.bundle;
            let mut props = Map::new();
            if let Some(id) = &b.id_column {
                props.insert(id.clone(), json!({"type": ["string", "number"], "description": "customer id (echoed as customer_id)"}));
            }
            for i in &b.encoder.inputs {
                props.insert(i.name.clone(), input_schema(i));
            }
            json!({
                "type": "object",
                "description": format!("raw columns as in training data of the default model '{}'; every input is required (null = missing)", b.name),
                "properties": props,
                "required": b.encoder.inputs.iter().map(|i| i.name.clone()).collect::<Vec<_>>(),
            })
        }
        None => json!({"type": "object", "description": "raw columns as in training data"}),
    }
}
