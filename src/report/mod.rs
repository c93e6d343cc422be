//! The model report: one self-contained HTML file (inline SVG and CSS, no scripts, nothing
//! fetched) that a retention manager, an analyst or a reviewer can read on a laptop or print.
//!
//! A [`Report`] is a list of [`Section`]s rendered into one page. [`model_report`] builds the
//! sections of a trained model from its card and bundle; other producers (the evaluation of the
//! closing-the-loop work) add their own sections with [`Report::push`].

mod charts;
mod sections;

pub use charts::{bar_chart, grouped_bars, line_chart, LineChart, Series, PALETTE};

use crate::bundle::card::ModelCard;
use crate::bundle::Bundle;

/// File name of the report inside a model directory.
pub use crate::bundle::REPORT_FILE;

/// One section of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Anchor id (letters, digits and dashes).
    pub id: String,
    /// Heading.
    pub title: String,
    /// One plain-language sentence on what the section shows.
    pub caption: String,
    /// HTML body (figures, tables, notes), already escaped.
    pub body: String,
}

/// A report page.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Page title.
    pub title: String,
    /// Line under the title.
    pub subtitle: String,
    /// Sections in order.
    pub sections: Vec<Section>,
}

impl Report {
    /// Add a section at the end.
    pub fn push(&mut self, section: Section) {
        self.sections.push(section);
    }

    /// The whole page. The content security policy forbids every request and every script, so
    /// the file opens offline and a browser proves it fetches nothing.
    pub fn to_html(&self) -> String {
        let mut nav = String::new();
        let mut body = String::new();
        for s in &self.sections {
            nav.push_str(&format!(
                "<li><a href=\"#{}\">{}</a></li>",
                esc(&s.id),
                esc(&s.title)
            ));
            body.push_str(&format!(
                "<section id=\"{}\"><h2>{}</h2><p class=\"caption\">{}</p>{}</section>\n",
                esc(&s.id),
                esc(&s.title),
                esc(&s.caption),
                s.body
            ));
        }
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><style>{CSS}</style></head>\n<body><header><h1>{title}</h1><p>{subtitle}</p>\
             <nav aria-label=\"Sections\"><ul>{nav}</ul></nav></header>\n<main>{body}</main></body></html>\n",
            title = esc(&self.title),
            subtitle = esc(&self.subtitle),
        )
    }
}

/// The report of a trained model.
pub fn model_report(card: &ModelCard, bundle: &Bundle) -> Report {
    sections::model_report(card, bundle)
}

/// The report of a trained model as one HTML page.
pub fn render(card: &ModelCard, bundle: &Bundle) -> String {
    model_report(card, bundle).to_html()
}

/// Errors of re-rendering a report from a model directory.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The bundle does not load.
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    /// The card is missing, unreadable or for another bundle.
    #[error("{path}: {message}")]
    Card {
        /// Card file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl ReportError {
    /// Process exit code: a missing or mismatched model directory is bad input (2).
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// Parse a card and check it belongs to bundle `version`.
pub fn card_for(
    json: &[u8],
    version: &str,
    path: &std::path::Path,
) -> Result<ModelCard, ReportError> {
    let bad = |message: String| ReportError::Card {
        path: path.to_path_buf(),
        message,
    };
    let card: ModelCard =
        serde_json::from_slice(json).map_err(|e| bad(format!("not a model card: {e}")))?;
    if card.version != version {
        return Err(bad(format!(
            "the card is for version {}, the bundle is version {version}; retrain or restore the matching card",
            card.version
        )));
    }
    Ok(card)
}

/// Re-render the report of the model in `dir` from its bundle and card.
pub fn render_dir(dir: &std::path::Path) -> Result<String, ReportError> {
    let loaded = crate::bundle::load(dir)?;
    let path = loaded.dir.join(crate::bundle::CARD_FILE);
    let json = std::fs::read(&path).map_err(|e| ReportError::Card {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let card = card_for(&json, &loaded.version, &path)?;
    let mut report = model_report(&card, &loaded.bundle);
    if let Some(u) = uplift_card(&loaded.dir, &loaded.version) {
        report.push(sections::uplift(&u));
    }
    Ok(report.to_html())
}

/// The uplift card beside the model, when it was trained for this model version.
fn uplift_card(dir: &std::path::Path, version: &str) -> Option<crate::bundle::uplift::UpliftCard> {
    let bytes = std::fs::read(dir.join(crate::bundle::uplift::UPLIFT_CARD_FILE)).ok()?;
    let card: crate::bundle::uplift::UpliftCard = serde_json::from_slice(&bytes).ok()?;
    (card.model_version == version).then_some(card)
}

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Readable on a laptop, printable (sections avoid page breaks inside figures).
const CSS: &str = "\
:root{--ink:#1b1f24;--muted:#57606a;--line:#d0d7de;--warn:#9a3412;--warnbg:#fff4e5;--ok:#0072b2}\
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--ink);background:#fff}\
header{padding:24px 32px 8px;border-bottom:1px solid var(--line)}h1{margin:0 0 4px;font-size:26px}\
header p{margin:0;color:var(--muted)}nav ul{list-style:none;padding:0;margin:10px 0;display:flex;flex-wrap:wrap;gap:6px 14px}\
nav a{color:var(--ok);text-decoration:none;font-size:14px}main{padding:8px 32px 40px;max-width:1200px}\
section{margin:26px 0;break-inside:avoid-page}h2{font-size:20px;margin:0 0 2px;border-bottom:1px solid var(--line);padding-bottom:4px}\
p.caption{color:var(--muted);margin:4px 0 12px}.figs{display:flex;flex-wrap:wrap;gap:18px}\
figure{margin:0;flex:1 1 520px;max-width:600px;break-inside:avoid}figure svg{width:100%;height:auto;display:block}\
figcaption{font-size:13px;color:var(--muted);margin-top:4px}details{margin:6px 0}summary{cursor:pointer;color:var(--ok)}\
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid var(--line);padding:3px 8px;text-align:left}\
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}tr.chosen td{font-weight:600;background:#eef6fc}\
.tiles{display:flex;flex-wrap:wrap;gap:12px}.tile{border:1px solid var(--line);border-radius:6px;padding:10px 14px;min-width:150px}\
.tile b{display:block;font-size:22px}.tile span{color:var(--muted);font-size:13px}\
.warn{background:var(--warnbg);border-left:4px solid var(--warn);padding:8px 12px;margin:8px 0}\
.tree ul{list-style:none;margin:0;padding-left:18px;border-left:1px dotted var(--line)}.tree li{margin:2px 0}\
.leaf{display:inline-block;padding:0 6px;border-radius:4px;font-size:13px}\
@media print{nav{display:none}main,header{padding:8px}details{display:block}details>summary{display:none}}";
