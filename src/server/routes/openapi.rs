//! `/openapi.json`: the OpenAPI 3.1 description, built from the routes' specs ([`RouteSpec`]) and
//! the default model's inputs, so it cannot drift from the router. Nothing here knows a route:
//! every operation is read from its spec.

use super::spec::RouteSpec;
use crate::server::auth::Access;
use crate::server::state::Registry;
use serde_json::{json, Map, Value};

/// Text that means a missing value, and `null`: two schema alternatives, each of one type (a
/// client generator makes one typed enum of each; an enum mixing types it cannot).
fn missing_schemas() -> [Value; 2] {
    [
        json!({"type": "string", "enum": crate::ingest::value::MISSING_TOKENS}),
        json!({"type": "null"}),
    ]
}

/// One input as exactly what the server accepts, so a schema-valid request is a valid one.
fn input_schema(spec: &crate::features::InputSpec, max_field_bytes: usize) -> Value {
    use crate::features::InputEncoding;
    use crate::ingest::value::{BOOL_PAIRS, MAX_MAGNITUDE};
    use crate::ingest::FeatureKind;
    let missing = missing_schemas();
    let mut v = match (&spec.kind, &spec.encoding) {
        (FeatureKind::Numeric, _) => json!({
            "anyOf": [
                {"type": "number", "minimum": -MAX_MAGNITUDE, "maximum": MAX_MAGNITUDE},
                {"type": "string", "pattern": "^\\s*[-+]?([0-9]{1,15}(\\.[0-9]*)?|\\.[0-9]+)\\s*$"},
                missing[0].clone(),
                missing[1].clone(),
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
            let mut words: Vec<&str> = vec![true_token.as_str(), false_token.as_str()];
            for (t, f) in BOOL_PAIRS {
                for w in [*t, *f] {
                    if !words.contains(&w) {
                        words.push(w);
                    }
                }
            }
            json!({
                "anyOf": [
                    {"type": "boolean"},
                    {"type": "integer", "enum": [0, 1]},
                    {"type": "string", "enum": words},
                    missing[0].clone(),
                    missing[1].clone(),
                ],
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

/// The OpenAPI 3.1 description of `routes`, with the default model's inputs and the server's
/// limits (batch size, field length).
pub fn openapi_spec<'a>(
    routes: impl IntoIterator<Item = &'a RouteSpec>,
    reg: &Registry,
    config: &crate::server::ServerConfig,
) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.as_str().to_ascii_lowercase()] = operation(r);
    }
    let mut schemas = request_schemas(config.max_batch);
    schemas.extend(score_schemas());
    schemas.extend(store_schemas());
    schemas.insert(
        "Customer".into(),
        customer_schema(reg, config.max_field_bytes),
    );
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}, "details": {}
        }}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "churn", "version": env!("CARGO_PKG_VERSION"), "description": "Churn probability, reasons and warnings for customers."},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an API token (only when tokens are configured): CHURN_API_TOKENS carry the scopes score, read and outcomes; CHURN_SCORE_TOKENS, CHURN_READ_TOKENS and CHURN_OUTCOMES_TOKENS one scope each. An operation's requirement lists the scopes that admit it (any one suffices)."},
                "admin": {"type": "http", "scheme": "bearer", "description": "CHURN_ADMIN_TOKEN"}
            },
            "schemas": schemas
        }
    })
}

/// The request bodies: `ScoreRequest` (at most `max_batch` customers) and `OutcomesRequest`.
fn request_schemas(max_batch: usize) -> Map<String, Value> {
    let schemas = json!({
        "AliasRequest": {"type": "object", "required": ["alias"], "properties": {
            "alias": {"type": "string", "pattern": "^[a-z][a-z0-9_-]{0,63}$", "description": "champion (served), challenger, or any name"},
            "version": {"type": "string", "description": "version or alias to point it at (action set)"},
            "action": {"enum": ["set", "unset", "rollback"], "default": "set", "description": "set: point the alias at version; unset: remove it (never the champion); rollback: point it back at its previous version"},
            "reason": {"type": "string", "description": "why (recorded)"},
            "by": {"type": "string", "description": "who (recorded; default admin-token)"}
        }, "additionalProperties": false},
        "OutcomesRequest": {"type": "object", "required": ["outcomes"], "properties": {"outcomes": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["customer_id", "event", "at"], "properties": {
            "customer_id": {"type": ["string", "number"]},
            "event": {"enum": ["churned", "retained", "action_taken", "purchase", "survey"]},
            "at": {"type": "string", "description": "ISO-8601 time, at most 5 minutes in the future"},
            "prediction_id": {"type": "string"}, "action": {"type": "string", "description": "action id of the playbook (action_taken)"},
            "cost": {"type": "number", "minimum": 0}, "amount": {"type": "number", "description": "purchase amount"},
            "score": {"type": "integer", "minimum": 0, "maximum": 10, "description": "survey answer (NPS)"},
            "external_id": {"type": "string", "description": "idempotency key"}
        }, "additionalProperties": false}}}},
        "ScoreRequest": {"type": "object", "required": ["customers"], "properties": {"customers": {"type": "array", "minItems": 1, "maxItems": max_batch, "items": {"$ref": "#/components/schemas/Customer"}}}},
    });
    match schemas {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The score response: `ScoreResponse`, its `ScoreResult`s and their parts. Every field the
/// score routes return is listed (a test compares a live response with it, recursively).
fn score_schemas() -> Map<String, Value> {
    let schemas = json!({
        "ScoreResponse": {"type": "object", "properties": {
            "request_id": {"type": "string", "description": "id of the request, stored with its predictions (store on)"},
            "model": {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}}},
            "results": {"type": "array", "items": {"$ref": "#/components/schemas/ScoreResult"}}
        }},
        "ScoreResult": score_result_schema(),
        "Reason": {"type": "object", "properties": {"condition": {"type": "string"}, "field": {"type": "string"}, "effect": {"type": "number"}}},
        "Recommendation": {"type": "object", "properties": {
            "action": {"type": "string", "description": "action id of the playbook"},
            "name": {"type": "string"},
            "channel": {"type": "string"},
            "cost": {"type": "number"},
            "save_rate": {"type": "number", "minimum": 0, "maximum": 1, "description": "the playbook's, learned from the store's outcomes, or the uplift model's drop ÷ churn_probability"},
            "expected_value": {"type": "number", "description": "churn_probability × customer_value × save_rate − cost; with an uplift model: uplift × customer_value − cost"},
            "uplift": {"type": "number", "description": "only when the model has an uplift bundle covering the action: the predicted drop in this customer's churn probability if the action is offered"},
            "why": {"type": "string", "description": "the rule that matched, the risk drivers and where the save rate comes from"},
            "message": {"type": "string", "description": "the action's message with its placeholders filled in"}
        }},
        "Lever": {"type": "object", "properties": {
            "changes": {"type": "array", "items": {"type": "object", "properties": {
                "field": {"type": "string"}, "from": {"type": "string"}, "to": {"type": "string"}
            }}},
            "risk_before": {"type": "number", "description": "churn_probability now"},
            "risk_after": {"type": "number", "description": "the model's risk for customers like this one with the changed values (an association, not a promised effect)"},
            "text": {"type": "string", "description": "the lever as one sentence"}
        }}
    });
    match schemas {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The store's answers: a customer's latest prediction, a worklist page, an outcome import and
/// the evaluation (its top level typed; the parts are objects described in the README).
fn store_schemas() -> Map<String, Value> {
    use crate::playbook::{RiskBand, Treatment};
    let money = |d: &str| json!({"type": "number", "description": d});
    let schemas = json!({
        "CustomerRecord": {"type": "object", "properties": {
            "customer_id": {"type": "string"}, "model": {"type": "string"},
            "model_version": {"type": "string"}, "prediction_id": {"type": "string"},
            "request_id": {"type": ["string", "null"]},
            "scored_at": {"type": "string", "description": "ISO-8601, UTC"},
            "age_seconds": {"type": "number"},
            "source": {"type": "string", "description": "http, batch or shadow"},
            "churn_probability": {"type": "number"},
            "probability_interval": {"type": "array", "items": {"type": "number"}},
            "predicted_churn": {"type": "boolean"},
            "risk_band": {"enum": [RiskBand::NAMES[0], RiskBand::NAMES[1], RiskBand::NAMES[2], null]},
            "segment_id": {"type": ["integer", "null"]}, "segment": {"type": ["string", "null"]},
            "rfm_class": {"type": ["string", "null"]}, "lifecycle_stage": {"type": ["string", "null"]},
            "treatment": {"enum": [Treatment::NAMES[0], Treatment::NAMES[1], null]},
            "customer_value": {"type": ["number", "null"], "description": "in cents"},
            "expected_loss": money("churn_probability × customer_value, in cents"),
            "incremental_value": money("the expected net value of the contact (0 without one), in cents"),
            "top_action": {"type": ["string", "null"]},
            "policy": {"type": ["string", "null"]}, "propensity": {"type": ["number", "null"]},
            "recommendations": {"type": "array", "items": {"type": "object", "properties": {"action": {"type": "string"}, "expected_value": {"type": "number"}}}},
            "input": {"type": "object", "description": "the raw input that was scored"}
        }},
        "WorklistRow": {"type": "object", "properties": {
            "customer_id": {"type": "string", "description": "absent when ids are stored as keyed hashes"},
            "customer_key": {"type": "string"}, "prediction_id": {"type": "string"},
            "scored_at": {"type": "string"}, "churn_probability": {"type": "number"},
            "risk_band": {"enum": [RiskBand::NAMES[0], RiskBand::NAMES[1], RiskBand::NAMES[2], null]},
            "segment": {"type": ["string", "null"]},
            "treatment": {"enum": [Treatment::NAMES[0], Treatment::NAMES[1], null]},
            "expected_loss": money("churn_probability × customer_value, in cents"),
            "incremental_value": money("the expected net value of the contact, in cents"),
            "top_action": {"type": ["string", "null"]}
        }},
        "WorklistPage": {"type": "object", "required": ["customers"], "properties": {
            "customers": {"type": "array", "items": {"$ref": "#/components/schemas/WorklistRow"}},
            "next_cursor": {"type": ["string", "null"], "description": "pass back as cursor for the next page; null on the last"}
        }},
        "OutcomesResult": {"type": "object", "required": ["stored", "duplicates"], "properties": {
            "stored": {"type": "integer", "description": "events stored"},
            "duplicates": {"type": "integer", "description": "events skipped: their external_id was stored before"}
        }},
        "Evaluation": {"type": "object", "description": "what the logged predictions were worth (with ?compare: the comparison of two versions instead)", "properties": {
            "model": {"type": "string"}, "as_of": {"type": "string"},
            "horizon_days": {"type": "integer"}, "horizon_source": {"type": "string"},
            "predictions": {"type": "integer"}, "customers": {"type": "integer"},
            "overall": {"type": "object"}, "performance": {"type": "object"},
            "by_version": {"type": "array", "items": {"type": "object"}},
            "by_month": {"type": "array", "items": {"type": "object"}},
            "by_segment": {"type": "array", "items": {"type": "object"}},
            "by_group": {"type": "array", "items": {"type": "object"}},
            "actions": {"type": "array", "items": {"type": "object"}, "description": "each action's lift against the control group"},
            "learned_rates": {"type": "array", "items": {"type": "object"}},
            "drift": {"type": "object"},
            "notes": {"type": "array", "items": {"type": "string"}}
        }}
    });
    match schemas {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// One customer's result: what is present depends on the model (segments, playbook), the store
/// and `?detail=`.
fn score_result_schema() -> Value {
    use crate::playbook::{RiskBand, Treatment};
    use crate::segment::{LifecycleStage, RfmClass};
    json!({"type": "object", "properties": {
        "customer_id": {"type": ["string", "number", "boolean", "null"]},
        "model_version": {"type": "string", "description": "only when the canary challenger answered this customer (churn-serve --challenger canary:SHARE): its version; the other results are the champion's, model.version"},
        "prediction_id": {"type": "string", "description": "id of the stored prediction (store on and the customer has an id); outcomes may name it"},
        "churn_probability": {"type": "number", "minimum": 0, "maximum": 1},
        "probability_interval": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "description": "95% Wilson interval of the leaf, calibrated"},
        "predicted_churn": {"type": "boolean", "description": "churn_probability >= the model's threshold"},
        "leaf_support": {"type": "integer", "description": "training customers in the leaf"},
        "segment_id": {"type": "integer", "minimum": 0, "description": "the customer's segment (models with segments)"},
        "segment": {"type": "string", "description": "the segment's name (models with segments)"},
        "rfm_class": {"enum": RfmClass::NAMES, "description": "RFM class (models trained on a transaction log)"},
        "lifecycle_stage": {"enum": LifecycleStage::NAMES, "description": "lifecycle stage (models with lifecycle rules: a tenure column or a transaction log)"},
        "risk_band": {"enum": RiskBand::NAMES, "description": "the playbook's risk band (models with a playbook; absent with detail=probability)"},
        "treatment": {"enum": Treatment::NAMES, "description": "experiment group; the control group gets no recommendations (models with a playbook; absent with detail=probability)"},
        "contact": {"type": "boolean", "description": "the one contact decision: treatment group and a top recommendation with positive expected net value (models with a playbook)"},
        "customer_value": {"type": "number", "description": "the customer value the playbook ranks with (models with a playbook; absent with detail=probability)"},
        "recommendations": {"type": "array", "description": "the playbook's actions ranked by expected net value, best first; empty for the control group (models with a playbook; absent with detail=probability)", "items": {"$ref": "#/components/schemas/Recommendation"}},
        "policy": {"enum": crate::playbook::Choice::NAMES, "description": "when the contact decision is yes (or would be, for the control group): how the first action was chosen, best (the top of the ranking) or explore (drawn by Thompson sampling; the playbook's [learning] explore share of those customers, deterministic per customer and day)"},
        "propensity": {"type": "number", "minimum": 0, "maximum": 1, "description": "with policy: the probability that this action was the one chosen for this customer (1 without exploration); stored with the prediction for off-policy evaluation"},
        "harms": {"type": "array", "items": {"type": "string"}, "description": "only with an uplift bundle: actions a rule proposed that the uplift model predicts would raise this customer's churn; never recommended to them"},
        "reasons": {"type": "array", "description": "absent with detail=probability; up to three inputs that raised the risk most, largest first; all effects are positive. Single tree: each input's net contribution along the decision path (probability before calibration). Boosted trees: the input's exact TreeSHAP contribution (log-odds), one-hot levels folded into their input", "items": {"$ref": "#/components/schemas/Reason"}},
        "protective": {"type": "array", "description": "up to three inputs that lowered the risk most, most negative first", "items": {"$ref": "#/components/schemas/Reason"}},
        "levers": {"type": "array", "description": "only with detail=full (the default); changes of actionable inputs to value combinations seen in training; risk_after is the model's estimate for similar customers, not a promised effect", "items": {"$ref": "#/components/schemas/Lever"}},
        "warnings": {"type": "array", "items": {"type": "object", "properties": {
            "kind": {"enum": ["unseen_category", "rare_category", "imputed"]},
            "field": {"type": "string"},
            "value": {"type": ["string", "number"], "description": "the unseen or rare category, or the value imputed"},
            "min_count": {"type": "integer", "description": "rare_category: the fewest training customers a category needs"}
        }}}
    }})
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The operation object of one route: id, summary, responses, parameters, body, security.
fn operation(r: &RouteSpec) -> Value {
    let mut responses = Map::new();
    let mut content = json!({});
    if let Some(schema) = r.ok.schema {
        content["schema"] = json!({"$ref": format!("#/components/schemas/{schema}")});
    }
    responses.insert(
        "200".into(),
        json!({"description": r.ok.description, "content": {r.ok.content_type: content}}),
    );
    for e in r.error_responses() {
        responses.insert(e.status.to_string(), error_response(e.description));
    }
    let mut op =
        json!({"operationId": r.operation_id, "summary": r.summary, "responses": responses});
    let params: Vec<Value> = r
        .path_params()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .chain(r.query.iter().map(|q| json!({"name": q.name, "in": "query", "required": q.required, "description": q.description, "schema": {"type": q.schema.as_str()}})))
        .collect();
    if !params.is_empty() {
        op["parameters"] = Value::Array(params);
    }
    if let Some(body) = r.body {
        op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
    }
    match r.access {
        Access::Open => {}
        // role names in the requirement (OpenAPI 3.1 allows them for non-OAuth schemes)
        Access::Api(scopes) => {
            let names: Vec<&str> = scopes.iter().map(|s| s.name()).collect();
            op["security"] = json!([{ "bearer": names }]);
        }
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
