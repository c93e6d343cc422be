//! The HTML model report: written by training, re-rendered by `churn-train report`, served by
//! the API, and opened in a real headless Chromium.

use crate::util::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's Chromium, or `None` (the test then says so; `.ci/run` installs it and sets
/// `CHURN_REQUIRE_BROWSER=1`, which turns a missing browser into a failure).
fn chromium() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CHURN_REQUIRE_BROWSER").is_none(),
            "CHURN_REQUIRE_BROWSER is set but chromium is not installed (apt-get install -y chromium)"
        );
        eprintln!("skipped: chromium not installed (apt-get install -y chromium)");
    }
    found
}

/// Run headless Chromium on `page` with `args`; returns (stdout, stderr).
fn browse(browser: &Path, page: &Path, args: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every `<svg>`'s rendered size and the page height, measured in the browser on a copy of the
/// page with a measuring script (the report itself forbids scripts).
fn measure(browser: &Path, html: &str) -> (Vec<(f64, f64)>, f64) {
    let dir = tempfile::tempdir().unwrap();
    let csp_start = html
        .find("<meta http-equiv=\"Content-Security-Policy\"")
        .unwrap();
    let csp_end = csp_start + html[csp_start..].find('>').unwrap() + 1;
    let probe = format!(
        "{}{}",
        &html[..csp_start],
        &html[csp_end..].replace(
            "</body>",
            "<script>const s = [...document.querySelectorAll('svg')].map(e => { const r = e.getBoundingClientRect(); return r.width + 'x' + r.height; });\
             const p = document.createElement('pre'); p.id = 'measured';\
             p.textContent = s.join(' ') + ' page:' + document.documentElement.scrollHeight;\
             document.body.appendChild(p);</script></body>"
        )
    );
    let page = write(dir.path(), "probe.html", &probe);
    let (dom, err) = browse(browser, &page, &["--window-size=1280,900", "--dump-dom"]);
    let start = dom
        .find("<pre id=\"measured\">")
        .unwrap_or_else(|| panic!("{err}"))
        + 19;
    let text = &dom[start..start + dom[start..].find("</pre>").unwrap()];
    let mut sizes = Vec::new();
    let mut height = 0.0;
    for tok in text.split_whitespace() {
        if let Some(h) = tok.strip_prefix("page:") {
            height = h.parse().unwrap();
        } else {
            let (w, h) = tok.split_once('x').unwrap();
            sizes.push((w.parse().unwrap(), h.parse().unwrap()));
        }
    }
    (sizes, height)
}

/// Open a report in Chromium: no console errors, nothing fetched, every figure drawn with a
/// size, a full-page screenshot; returns the screenshot's path.
fn check_in_browser(browser: &Path, report: &Path, shot: &Path) {
    let html = std::fs::read_to_string(report).unwrap();
    // self-contained: no script, no external reference (the SVG namespace is a name, not a fetch)
    assert!(!html.contains("<script"), "{}", report.display());
    let text = html.replace("http://www.w3.org/2000/svg", "");
    let external = text.matches("://").count()
        + text.matches(" src=").count()
        + text.matches("href=\"").count()
        - text.matches("href=\"#").count();
    assert_eq!(
        external,
        0,
        "{}: references outside the file",
        report.display()
    );
    let (sizes, height) = measure(browser, &html);
    assert_eq!(sizes.len(), html.matches("<svg").count());
    assert!(sizes.len() >= 5, "{} figures", sizes.len());
    for (i, (w, h)) in sizes.iter().enumerate() {
        assert!(*w > 100.0 && *h > 100.0, "svg {i} is {w}×{h}");
    }
    let (_, err) = browse(
        browser,
        report,
        &[
            &format!("--window-size=1280,{}", height.ceil() as u64),
            &format!("--screenshot={}", shot.display()),
        ],
    );
    // the content security policy forbids every request: any attempt is a console error
    for line in err.lines() {
        assert!(
            !line.contains("CONSOLE") && !line.contains("Refused to") && !line.contains("net::ERR"),
            "{}: {line}",
            report.display()
        );
    }
    let png = std::fs::read(shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {err}"));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 50_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn telco_and_cdnow_reports_open_in_headless_chromium() {
    let telco_report = champion_dir(&trained_example().join("telco")).join("report.html");
    let size = std::fs::metadata(&telco_report).unwrap().len();
    assert!(size <= 1_000_000, "Telco report is {size} bytes");
    let dir = tempfile::tempdir().unwrap();
    let cdnow = dir.path().join("cdnow");
    train_config(
        &root().join("training/cdnow.toml"),
        &cdnow,
        &[
            "--max-depth",
            "4,8",
            "--min-samples-leaf",
            "20",
            "--customer-value",
            "100",
            "--contact-cost",
            "5",
            "--save-rate",
            "0.2",
        ],
    );
    // with economics the profit section is there (and its figure is checked below)
    let html = std::fs::read_to_string(champion_dir(&cdnow).join("report.html")).unwrap();
    assert!(html.contains("<section id=\"profit\">"));
    assert!(html.contains("<section id=\"segments\">"));
    let Some(browser) = chromium() else { return };
    // README shows this screenshot: CHURN_UPDATE_DOCS=1 refreshes docs/report-telco.png
    let shot = if std::env::var_os("CHURN_UPDATE_DOCS").is_some() {
        root().join("docs/report-telco.png")
    } else {
        dir.path().join("telco.png")
    };
    check_in_browser(&browser, &telco_report, &shot);
    check_in_browser(
        &browser,
        &champion_dir(&cdnow).join("report.html"),
        &dir.path().join("cdnow.png"),
    );
}

/// A boosted model's report describes the boosted model that ships (issue 35): no section about
/// the single tree that does not ship, SHAP wording for importance, the choice between the kinds,
/// and every figure drawn.
#[test]
fn a_boosted_models_report_describes_what_ships() {
    let model = crate::export_boosted::boosted_example();
    let report = champion_dir(&model).join("report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    for gone in [
        "How the tree was chosen",
        "The decision tree",
        "impurity decrease",
    ] {
        assert!(!html.contains(gone), "'{gone}' in a boosted model's report");
    }
    assert!(html.contains("The boosted trees"));
    assert!(html.contains("mean absolute SHAP contribution"));
    let kinds = table_after(&html, "<section id=\"training\">");
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert!(
        kinds[1][0].starts_with("boosted") && kinds[1][2] == "yes",
        "{kinds:?}"
    );
    assert!(kinds[1][1].starts_with("0."), "{kinds:?}");
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    check_in_browser(&browser, &report, &dir.path().join("boosted.png"));
}

/// The rows of the table following `marker` in `html`, cells as text.
fn table_after(html: &str, marker: &str) -> Vec<Vec<String>> {
    let start = html.find(marker).unwrap_or_else(|| panic!("no '{marker}'"));
    let t = &html[start..];
    let body = &t[t.find("<tbody>").unwrap() + 7..t.find("</tbody>").unwrap()];
    body.split("<tr")
        .skip(1)
        .map(|row| {
            row.split("<td")
                .skip(1)
                .map(|c| {
                    let c = &c[c.find('>').unwrap() + 1..];
                    c[..c.find("</td>").unwrap()].to_string()
                })
                .collect()
        })
        .collect()
}

#[test]
fn report_numbers_match_the_card() {
    let dir = champion_dir(&trained_example().join("telco"));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let card = read_card(&dir);
    let h = &card["holdout"];
    let auc = format!(
        "<b>{:.3}</b><span>holdout ROC-AUC",
        h["roc_auc"].as_f64().unwrap()
    );
    assert!(html.contains(&auc), "{auc}");
    let brier = format!("<b>{:.3}</b><span>Brier", h["brier"].as_f64().unwrap());
    assert!(html.contains(&brier), "{brier}");
    let threshold = format!(
        "<b>{:.3}</b><span>threshold",
        card["threshold"]["threshold"].as_f64().unwrap()
    );
    assert!(html.contains(&threshold), "{threshold}");
    // the ROC curve's points are the card's, point by point
    let roc = &card["holdout_details"]["curves"]["roc"];
    let rows = table_after(&html, "<th scope=\"col\">false positive rate</th>");
    assert_eq!(rows.len(), roc.as_array().unwrap().len());
    for (row, p) in rows.iter().zip(roc.as_array().unwrap()) {
        for k in 0..3 {
            assert_eq!(row[k], format!("{:.4}", p[k].as_f64().unwrap()));
        }
    }
    // the curve's last point catches everyone; its AUC (trapezoids) is the card's AUC
    let pts: Vec<(f64, f64)> = roc
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    assert_eq!(*pts.last().unwrap(), (1.0, 1.0));
    let area: f64 = pts
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
        .sum();
    assert!(
        (area - h["roc_auc"].as_f64().unwrap()).abs() < 1e-9,
        "{area}"
    );
    // the gains table agrees with the card's top-10% capture (ties shared in proportion)
    let gains = table_after(&html, "<th scope=\"col\">contact the top</th>");
    let ten = gains.iter().find(|r| r[0] == "10.0%").unwrap();
    assert_eq!(
        ten[1],
        format!("{:.1}%", 100.0 * h["capture_top_10pct"].as_f64().unwrap())
    );
    // one reliability row per non-empty bin, counts adding up to the holdout
    let bins = table_after(&html, "<th scope=\"col\">predicted bin</th>");
    let n: u64 = bins.iter().map(|r| r[1].parse::<u64>().unwrap()).sum();
    assert_eq!(n, h["rows"].as_u64().unwrap());
}

#[test]
fn a_degenerate_playbook_is_flagged_with_the_fix() {
    // the built-in playbook on Telco: a constant customer value, and one action for most
    let dir = champion_dir(&trained().join("telco"));
    let card = read_card(&dir);
    let mix = &card["holdout_details"]["playbook"];
    let warnings: Vec<&str> = mix["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("every customer is worth the same") && w.contains("expression")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("Fix:")
            && (w.contains("top action") || w.contains("action(s) ever come first"))),
        "{warnings:?}"
    );
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("class=\"warn\""));
    // the bundled example's own playbook values customers by revenue and mixes actions
    let example = read_card(&trained_example().join("telco"));
    let w = &example["holdout_details"]["playbook"]["warnings"];
    assert_eq!(w.as_array().unwrap().len(), 0, "{w}");
}

#[test]
fn churn_train_report_rerenders_the_same_page_and_checks_the_card() {
    let tmp = tempfile::tempdir().unwrap();
    let src = champion_dir(&trained_example().join("telco"));
    let dir = tmp.path().join("telco");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["model.bin", "model_card.json", "report.html"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let out = tmp.path().join("again.html");
    let (code, _, err) = run(
        "churn-train",
        &[
            "report",
            "--model",
            dir.to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(dir.join("report.html")).unwrap()
    );
    // a card of another version is refused, naming the file
    let card = std::fs::read_to_string(dir.join("model_card.json")).unwrap();
    let v: Value = serde_json::from_str(&card).unwrap();
    let version = v["version"].as_str().unwrap();
    std::fs::write(
        dir.join("model_card.json"),
        card.replace(version, "000000000000"),
    )
    .unwrap();
    let (code, _, err) = run("churn-train", &["report", "--model", dir.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        err.contains("model_card.json") && err.contains("000000000000"),
        "{err}"
    );
}

#[test]
fn the_api_serves_the_report_with_the_same_auth_as_other_model_routes() {
    let dir = trained_example();
    let html = std::fs::read(champion_dir(&dir.join("telco")).join("report.html")).unwrap();
    let s = start(dir, &["--store", "none"], &[("CHURN_API_TOKENS", "t1")]);
    let auth = [("Authorization", "Bearer t1")];
    let r = http(&s.addr, "GET", "/v1/models/telco/report", &auth, b"");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.as_bytes(), html.as_slice());
    let r = http(&s.addr, "GET", "/v1/models/telco/report", &[], b"");
    assert_eq!(r.status, 401);
    let r = http(&s.addr, "GET", "/v1/models/nope/report", &auth, b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "unknown_model");
    let spec = http(&s.addr, "GET", "/openapi.json", &auth, b"").json();
    assert!(
        spec["paths"]["/v1/models/{name}/report"]["get"]["responses"]["200"]["content"]
            ["text/html"]
            .is_object()
    );
}
