//! `POST /v1/score` and `POST /v1/models/{name}/score`: thin over [`Scorer`].

use super::lookup::resolve_model;
use super::params;
use super::spec::{ErrorResponse, Method, QueryParam, RouteSpec, Success, UNKNOWN_MODEL};
use crate::features::Warning;
use crate::io::RawValue;
use crate::playbook::{RiskBand, RiskBands, Treatment};
use crate::scoring::{Detail, Reason, Scorer};
use crate::segment::{LifecycleStage, RfmClass};
use crate::server::auth::{Access, Scope};
use crate::server::challenger::{in_canary, ChallengerMode, ShadowJob};
use crate::server::error::{ApiCode, ApiError, ApiResult};
use crate::server::json::{self, Cell, Customer};
use crate::server::AppState;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;

/// The two score routes: the same contract, with the default or a named model.
pub(super) const ROUTES: &[RouteSpec] = &[
    RouteSpec {
        method: Method::Post,
        path: "/v1/score",
        access: Access::Api(&[Scope::Score]),
        operation_id: "scoreDefault",
        summary: "Score customers with the default model",
        query: QUERY,
        body: Some("ScoreRequest"),
        ok: SCORED,
        errors: ERRORS,
        register: |r| r.to(score_default),
    },
    RouteSpec {
        method: Method::Post,
        path: "/v1/models/{name}/score",
        access: Access::Api(&[Scope::Score]),
        operation_id: "scoreNamed",
        summary: "Score customers with a named model",
        query: QUERY,
        body: Some("ScoreRequest"),
        ok: SCORED,
        errors: ERRORS,
        register: |r| r.to(score_named),
    },
];

const QUERY: &[QueryParam] = &[QueryParam::optional(
    "detail",
    "`full` (default): everything; `advice`: all but levers; `probability`: probability, interval, leaf support, segment and warnings only (no reasons, advice or levers are computed, unless the store is on: then the advice is still computed and recorded)",
)];

const SCORED: Success = Success {
    description: "scores in input order",
    content_type: "application/json",
    schema: Some("ScoreResponse"),
};

const ERRORS: &[ErrorResponse] = &[
    ErrorResponse::new(422, "wrong types, infinite values or missing fields (text 'NaN' is a missing value); `field` names the culprit, e.g. customers[3].tenure"),
    UNKNOWN_MODEL,
];

/// One result of `POST /v1/score`. `/openapi.json` lists every field (the `ScoreResult` schema in
/// `openapi.rs`); a test holds live responses against it, key for key.
#[derive(Serialize)]
struct ScoreResult<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_id: Option<&'a Cell<'a>>,
    /// The version that answered, when it is the canary challenger (else the champion of
    /// `model.version`).
    #[serde(skip_serializing_if = "Option::is_none")]
    model_version: Option<&'a str>,
    /// Id of the stored prediction (store enabled and the customer has an id).
    #[serde(skip_serializing_if = "Option::is_none")]
    prediction_id: Option<String>,
    churn_probability: f64,
    probability_interval: [f64; 2],
    predicted_churn: bool,
    leaf_support: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    segment_id: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    segment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rfm_class: Option<RfmClass>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lifecycle_stage: Option<LifecycleStage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    risk_band: Option<RiskBand>,
    #[serde(skip_serializing_if = "Option::is_none")]
    treatment: Option<Treatment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contact: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recommendations: Option<Vec<crate::playbook::Recommendation<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    harms: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<crate::playbook::Choice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    propensity: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasons: Option<Vec<Cow<'a, Reason>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protective: Option<Vec<Cow<'a, Reason>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    levers: Option<Vec<crate::scoring::Lever<'a>>>,
    warnings: Vec<Warning>,
}

#[derive(Serialize)]
struct ModelRef<'a> {
    name: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
struct ScoreResponse<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    model: ModelRef<'a>,
    results: Vec<ScoreResult<'a>>,
}

/// How much of a result a request asks for (`?detail=`): what is left out is not computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseDetail {
    /// Everything: probability, interval, segment, reasons, advice and levers (the default).
    Full,
    /// Everything but levers (the lever search re-scores the model for every candidate).
    Advice,
    /// Probability, interval, leaf support, segment and warnings: no reasons, advice or levers.
    Probability,
}

impl ResponseDetail {
    /// The accepted `detail` values.
    pub const NAMES: [(&'static str, ResponseDetail); 3] = [
        ("full", ResponseDetail::Full),
        ("advice", ResponseDetail::Advice),
        ("probability", ResponseDetail::Probability),
    ];

    /// What the scorer computes for it; `recording` (store on) needs the advice whatever the
    /// response shows (levers are computed by the route, only for [`ResponseDetail::Full`]).
    fn computed(self, recording: bool) -> Detail {
        Detail {
            segments: true,
            advice: recording || self != ResponseDetail::Probability,
            day: 0,
        }
    }
}

impl<'de> Deserialize<'de> for ResponseDetail {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let asked = String::deserialize(d)?;
        match Self::NAMES.iter().find(|(name, _)| *name == asked) {
            Some(&(_, detail)) => Ok(detail),
            None => Err(serde::de::Error::custom(format!(
                "expected one of {}, got '{}'",
                Self::NAMES.map(|(name, _)| name).join(", "),
                asked.chars().take(64).collect::<String>()
            ))),
        }
    }
}

/// The query of both score routes.
#[derive(Deserialize)]
struct ScoreQuery {
    /// How much of each result to compute and return (absent: [`ResponseDetail::Full`]).
    detail: Option<ResponseDetail>,
}

/// `POST /v1/score`.
pub async fn score_default(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult {
    score_with(state, req, payload, None).await
}

/// `POST /v1/models/{name}/score`.
pub async fn score_named(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
) -> ApiResult {
    score_with(state, req, payload, Some(path.into_inner())).await
}

async fn score_with(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    name: Option<String>,
) -> ApiResult {
    let detail = params::query::<ScoreQuery>(&req)?
        .detail
        .unwrap_or(ResponseDetail::Full);
    let reg = state.current();
    let (model_name, model) = resolve_model(&reg, name)?;
    let mode = state.config.challenger;
    let challenger = reg
        .challengers
        .get(&model_name)
        .filter(|_| mode != ChallengerMode::Off);
    let body = json::read_body(&req, payload, &state.config, &state.body_budget).await?;
    let parsed = json::parse_score_request(&body, state.config.max_batch)?;
    // while this request is scored, the shadow thread leaves its worker's core alone
    let _busy = state.shadow.as_ref().map(|q| q.busy());
    let scorer = &model.scorer;
    let log = state.log.as_deref().zip(state.store.as_deref());
    let now = crate::time::now_ms();
    let request_id = log.map(|_| crate::store::new_id());
    let ctx_of = |s| record_context(log.map(|l| l.1), request_id.as_deref(), &model_name, s, now);
    let ctx = ctx_of(scorer);
    let canary = match (mode, challenger) {
        (ChallengerMode::Canary(share), Some(c)) => Some((share, &c.scorer, ctx_of(&c.scorer))),
        _ => None,
    };
    let shadow = match (mode, challenger, &state.shadow) {
        (ChallengerMode::Shadow, Some(c), Some(q)) if q.room_for(parsed.customers.len()) => {
            Some((c, q))
        }
        _ => None,
    };
    let mut results = Vec::with_capacity(parsed.customers.len());
    let mut bands = [0u64; RiskBand::ALL.len()];
    let mut answered_by_canary = 0;
    let mut shadow_customers = Vec::new();
    // records are queued only once every customer scored: a request refused for its third
    // customer leaves no record of the first two
    let mut records = Vec::new();
    for (ci, cust) in parsed.customers.iter().enumerate() {
        // the canary share (by a stable hash of the id) gets the challenger's answer
        let id = match (&canary, &shadow) {
            (None, None) => None,
            _ => customer_id_of(scorer, cust, ci)?.1,
        };
        let compute = |c: Option<&crate::store::RecordContext<'_>>| {
            (detail, detail.computed(c.is_some()).on(now))
        };
        let max_field = state.config.max_field_bytes;
        // the canary share gets the challenger's answer; a customer the challenger cannot score
        // (an input only it needs) gets the champion's
        let by_canary = match (&canary, id.as_deref()) {
            (Some((share, s, c)), Some(id)) if in_canary(&model_name, id, *share) => {
                score_customer(s, ci, cust, c.as_ref(), max_field, compute(c.as_ref()))
                    .ok()
                    .map(|(mut r, rec)| {
                        r.model_version = Some(&s.version);
                        (r, rec)
                    })
            }
            _ => None,
        };
        answered_by_canary += u64::from(by_canary.is_some());
        let (r, rec) = match by_canary {
            Some(answer) => answer,
            None => score_customer(
                scorer,
                ci,
                cust,
                ctx.as_ref(),
                max_field,
                compute(ctx.as_ref()),
            )?,
        };
        bands[band_index(r.risk_band, r.churn_probability)] += 1;
        if let (Some(_), Some(rec), Some(id)) = (&shadow, &rec, &id) {
            shadow_customers.push((id.to_string(), rec.input.clone()));
        }
        records.extend(rec.map(|rec| (results.len(), rec)));
        results.push(r);
    }
    queue_records(log.map(|l| l.0), records, &mut results);
    if let (Some((c, q)), Some(id)) = (shadow, &request_id) {
        offer_shadow(q, c, &model_name, id, now, shadow_customers);
    }
    for (band, count) in RiskBand::ALL.into_iter().zip(bands) {
        state.metrics.scored(&model_name, band.as_str(), count);
    }
    if let Some((_, s, _)) = &canary {
        state
            .metrics
            .canary(&model_name, &s.version, answered_by_canary);
    }
    log_ids(&state, &model_name, &results);
    let response = ScoreResponse {
        request_id,
        model: ModelRef {
            name: &model_name,
            version: &scorer.version,
        },
        results,
    };
    json_response(&response)
}

/// Queue a request's records (result index, record) for the store; a record the full queue
/// drops (counted in churn_store_dropped_total) takes its id out of the result: no id for a
/// record that will never be stored.
fn queue_records(
    log: Option<&crate::store::PredictionLog>,
    records: Vec<(usize, crate::store::PredictionRecord)>,
    results: &mut [ScoreResult<'_>],
) {
    let Some(log) = log else { return };
    for (i, rec) in records {
        if !log.try_log(rec) {
            results[i].prediction_id = None;
        }
    }
}

/// Hand a request's customers to the shadow challenger `c` (nothing when none has an id).
fn offer_shadow(
    q: &crate::server::challenger::ShadowQueue,
    c: &std::sync::Arc<crate::server::challenger::Challenger>,
    model: &str,
    request_id: &str,
    at: i64,
    customers: Vec<(String, String)>,
) {
    if !customers.is_empty() {
        q.offer(ShadowJob {
            challenger: c.clone(),
            model: model.to_string(),
            request_id: request_id.to_string(),
            at,
            customers,
        });
    }
}

/// The record context of scorer `s` answering a request (`None` without a store).
fn record_context<'a>(
    store: Option<&'a crate::store::Store>,
    request_id: Option<&str>,
    model: &'a str,
    s: &'a Scorer,
    now: i64,
) -> Option<crate::store::RecordContext<'a>> {
    store
        .zip(request_id)
        .map(|(store, id)| crate::store::RecordContext {
            request_id: id.to_string(),
            model,
            model_version: &s.version,
            scored_at: now,
            source: crate::store::Source::Http,
            ids: store.ids(),
            id_field: s.bundle.id_column.as_deref(),
        })
}

/// The shadow challenger's answers to one request's customers ([`ShadowJob`]), computed by the
/// served path of [`score_customer`] (probability detail: the advice is recorded, nothing else
/// is built) and recorded as [`crate::store::Source::Shadow`]; with the count of customers it
/// could not score (inputs it does not accept).
pub(crate) fn shadow_score(
    job: &ShadowJob,
    ids: &crate::store::IdKey,
    max_field_bytes: usize,
) -> (Vec<crate::store::PredictionRecord>, usize) {
    let s = &job.challenger.scorer;
    let ctx = crate::store::RecordContext {
        request_id: job.request_id.clone(),
        model: &job.model,
        model_version: &s.version,
        scored_at: job.at,
        source: crate::store::Source::Shadow,
        ids,
        id_field: s.bundle.id_column.as_deref(),
    };
    let detail = ResponseDetail::Probability;
    let compute = (detail, detail.computed(true).on(job.at));
    let mut records = Vec::with_capacity(job.customers.len());
    let mut failed = 0;
    // with hashed ids the stored input has no id field: the challenger's id field gets the id
    let id_field = s.bundle.id_column.as_deref().unwrap_or("customer_id");
    let key = Value::from(id_field).to_string();
    for (id, input) in &job.customers {
        // appended last, the id wins over any id the input still holds (a repeated key keeps
        // its last value), so the input is parsed once, by the scoring path
        let Some(head) = input.trim_end().strip_suffix('}') else {
            failed += 1;
            continue;
        };
        let sep = if head.trim_end().ends_with('{') {
            ""
        } else {
            ","
        };
        let body = format!(
            "{{\"customers\":[{head}{sep}{key}:{}}}]}}",
            Value::from(id.as_str())
        );
        let parsed = match json::parse_score_request(body.as_bytes(), 1) {
            Ok(p) => p,
            Err(_) => {
                failed += 1;
                continue;
            }
        };
        let Some(cust) = parsed.customers.first() else {
            failed += 1;
            continue;
        };
        match score_customer(s, 0, cust, Some(&ctx), max_field_bytes, compute) {
            Ok((_, Some(mut rec))) => {
                // the champion's id field names the customer: the same key, also when the
                // challenger's layout names its id differently
                if rec.customer_id.is_some() {
                    rec.customer_id = Some(id.clone());
                }
                rec.customer_key = ids.key_of(id);
                // the input is the champion's record's (same request id and customer key) and
                // the top action is kept: what would cost the writer most is not written twice
                rec.input = String::new();
                rec.recommendations = String::from("[]");
                records.push(rec);
            }
            _ => failed += 1,
        }
    }
    (records, failed)
}

/// Risk band counter slot (the band's place in [`RiskBand::ALL`]); models without a playbook
/// use the default bands.
#[inline]
fn band_index(band: Option<RiskBand>, p: f64) -> usize {
    band.unwrap_or_else(|| RiskBands::default().band(p)) as usize
}

/// A customer's id field as received and as text.
type IdOf<'a> = (Option<&'a Cell<'a>>, Option<Cow<'a, str>>);

/// The customer's id (the bundle's id column, else `customer_id`) and its text, under the one id
/// rule ([`crate::store::check_id`]): text or a number (stored as its JSON text, e.g. `7590` →
/// `"7590"`, `1.5` → `"1.5"`); `null` or an absent field means no id (scored, not stored); a
/// boolean, array or object is refused, as is text with a control character or over 256 bytes.
fn customer_id_of<'a>(
    scorer: &Scorer,
    cust: &'a Customer<'a>,
    ci: usize,
) -> Result<IdOf<'a>, ApiError> {
    let found = scorer
        .bundle
        .id_column
        .as_deref()
        .and_then(|k| cust.get(k).map(|v| (k, v)))
        .or_else(|| cust.get("customer_id").map(|v| ("customer_id", v)));
    let Some((key, cell)) = found else {
        return Ok((None, None));
    };
    let field = || format!("customers[{ci}].{key}");
    let text = match cell {
        Cell::Null => return Ok((None, None)),
        Cell::Str(_) | Cell::Num(_) => cell.text(),
        Cell::Bool(_) | Cell::NonFinite | Cell::Compound => {
            return Err(
                ApiError::new(ApiCode::InvalidType, "a customer id is text or a number")
                    .field(field()),
            )
        }
    };
    crate::store::check_id(&text)
        .map_err(|e| ApiError::new(ApiCode::InvalidValue, e.to_string()).field(field()))?;
    Ok((Some(cell), Some(text)))
}

/// Encode and score customer `ci` of a request; with a record context (store on) also its
/// prediction record (customers with an id only). With the store on the advice is computed
/// whatever `detail` asks for: the record keeps the treatment and control-group assignment that
/// the evaluation measures; `detail` then only trims the response (levers are never recorded).
fn score_customer<'a>(
    scorer: &'a Scorer,
    ci: usize,
    cust: &'a Customer<'a>,
    ctx: Option<&crate::store::RecordContext<'_>>,
    max_field_bytes: usize,
    (detail, compute): (ResponseDetail, Detail),
) -> Result<(ScoreResult<'a>, Option<crate::store::PredictionRecord>), ApiError> {
    let field = |f: &str| format!("customers[{ci}].{f}");
    json::check_field_lengths(cust, ci, max_field_bytes)?;
    // convert JSON values up front so type errors name the field
    let mut vals: Vec<Option<RawValue>> = vec![None; scorer.bundle.encoder.inputs.len()];
    for (k, v) in &cust.0 {
        if let Some(i) = scorer.input_index(k) {
            vals[i] = Some(json::raw_value(v, &|| field(k))?);
        }
    }
    let mut warnings = Vec::new();
    let row = scorer
        .encode(|i| vals[i], &mut warnings)
        .map_err(|e| ApiError::from_score(e, ci))?;
    let (customer_id, id_text) = customer_id_of(scorer, cust, ci)?;
    let scored = scorer.score_encoded_with(&row, warnings, id_text.as_deref(), compute);
    let record = ctx.zip(id_text.as_deref()).map(|(ctx, id)| {
        let input = serde_json::to_string(cust).unwrap_or_else(|_| "{}".into());
        crate::store::PredictionRecord::new(ctx, id, input, &scored)
    });
    let p = scored.prediction;
    let brief = detail == ResponseDetail::Probability;
    let (reasons, protective) = if brief {
        (None, None)
    } else if scored.advice.is_some() {
        (Some(scored.reasons), Some(scored.protective))
    } else {
        let (r, p) = scorer.top_reasons_with_leaf(&row, p.leaf, 3);
        (Some(r), Some(p))
    };
    let mut advice = scored.advice.filter(|_| !brief);
    let result = ScoreResult {
        customer_id,
        model_version: None,
        prediction_id: record.as_ref().map(|r| r.prediction_id.clone()),
        churn_probability: p.probability,
        probability_interval: [p.low, p.high],
        predicted_churn: p.churn,
        leaf_support: p.support as u64,
        segment_id: scored.segment.as_ref().map(|a| a.segment_id),
        rfm_class: scored.segment.as_ref().and_then(|a| a.rfm_class),
        lifecycle_stage: scored.segment.as_ref().and_then(|a| a.lifecycle_stage),
        segment: scored.segment.map(|a| a.segment),
        risk_band: advice.as_ref().map(|a| a.risk_band),
        treatment: advice.as_ref().map(|a| a.treatment),
        contact: advice.as_ref().map(|a| a.contact),
        customer_value: advice.as_ref().map(|a| crate::util::cents(a.value)),
        levers: advice
            .as_ref()
            .filter(|_| detail == ResponseDetail::Full)
            .map(|_| scorer.levers(&row)),
        policy: advice.as_ref().and_then(|a| a.policy),
        propensity: advice.as_ref().and_then(|a| a.propensity),
        harms: advice
            .as_mut()
            .map(|a| std::mem::take(&mut a.harms))
            .filter(|h| !h.is_empty()),
        recommendations: advice.map(|a| a.recommendations),
        // the scorer explains only when it advises; otherwise explain here
        reasons,
        protective,
        warnings: scored.warnings,
    };
    Ok((result, record))
}

/// Debug log of the scored ids, hashed unless raw ids were asked for.
fn log_ids(state: &AppState, model: &str, results: &[ScoreResult<'_>]) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let ids: Vec<String> = results
        .iter()
        .filter_map(|r| r.customer_id.as_ref())
        .map(|v| {
            if state.config.log_customer_ids {
                v.text().into_owned()
            } else {
                state.log_key.key_of(&v.text())[..16].to_string()
            }
        })
        .collect();
    tracing::debug!(model = %model, customers = results.len(), ids = ?ids, "scored");
}

/// Serialise into one pre-sized buffer (~2 KB per customer with a playbook).
fn json_response(response: &ScoreResponse<'_>) -> ApiResult {
    let mut body = Vec::with_capacity(256 + 2560 * response.results.len());
    serde_json::to_writer(&mut body, response).map_err(|e| {
        ApiError::new(
            ApiCode::Internal,
            format!("could not serialise the response: {e}"),
        )
    })?;
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body))
}
