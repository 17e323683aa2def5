//! The status page: every server's health, grouped by rank, server-rendered with inline CSS and
//! one small inline script allowed by hash in the page's Content-Security-Policy.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use askama::Template;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use meridian_platform::{ApiError, ApiResult};
use sha2::{Digest, Sha256};

use crate::model::Rank;
use crate::statuses::HealthRow;

/// How long a rendered page is served again before it is rendered anew.
pub const CACHE_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// Seconds between the page's own refreshes.
pub const REFRESH_SECS: u32 = 60;

const STYLE: &str = "\
:root{color-scheme:light dark;--up:#1a7f37;--down:#c62828;--muted:#6b7280}\
body{font:15px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:72rem;padding:1rem}\
h1{margin:.2rem 0}h2{font-size:1.1rem;margin:1.5rem 0 .4rem}h2 small,.meta,footer,td small{color:var(--muted);font-weight:normal}\
.lines{font-size:1.05rem}table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #8883;vertical-align:top}\
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted)}\
.name{font-weight:600}a{color:inherit}.badge{display:inline-block;padding:0 .5rem;border-radius:1rem;color:#fff;font-size:.85rem}\
tr.up .badge{background:var(--up)}tr.down .badge{background:var(--down)}.error{color:var(--down);font-family:monospace}\
tr.copied{outline:2px solid var(--up)}time{text-decoration:underline dotted}footer{margin-top:2rem;font-size:.8rem}\
@media (max-width:40rem){thead{display:none}table,tbody,tr{display:block}tr{padding:.5rem 0;border-bottom:1px solid #8885}\
td{display:inline-block;border:0;padding:.1rem .8rem .1rem 0}td:first-child{display:block}\
td[data-label]::before{content:attr(data-label) ' ';color:var(--muted);font-size:.8rem}}";

const SCRIPT: &str = "document.addEventListener('click',function(e){if(!e.shiftKey)return;\
var r=e.target.closest('tr[data-id]');if(!r)return;e.preventDefault();var id=r.getAttribute('data-id');\
if(navigator.clipboard){navigator.clipboard.writeText(id);}r.classList.add('copied');\
setTimeout(function(){r.classList.remove('copied');},800);});";

fn hash(text: &str) -> String {
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes())))
}

/// The page's policy: nothing but its own inline style and script (by hash).
pub fn content_security_policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        format!(
            "default-src 'none'; style-src {}; script-src {}; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash(STYLE),
            hash(SCRIPT)
        )
    })
}

pub struct Row {
    pub id: String,
    pub name: String,
    pub host: String,
    pub facility: bool,
    pub up: bool,
    pub version: String,
    pub latency: String,
    pub seen_ago: String,
    pub seen_exact: String,
    pub error: String,
    pub error_ago: String,
    pub error_exact: String,
    pub uptime_24h: String,
    pub uptime_7d: String,
}

pub struct Group {
    pub title: &'static str,
    pub up: usize,
    pub servers: Vec<Row>,
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage<'a> {
    groups: Vec<Group>,
    release_lines: Vec<String>,
    up_count: usize,
    total: usize,
    generated: String,
    version: &'a str,
    refresh_secs: u32,
    style: &'static str,
    script: &'static str,
}

/// "42 s ago", "5 min ago", "3 h ago", "2 d ago".
pub fn time_since(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds().max(0);
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

fn percent(ok: i64, total: i64) -> String {
    if total == 0 {
        return "—".into();
    }
    let value = ok as f64 * 100.0 / total as f64;
    if ok == total { "100%".into() } else { format!("{value:.1}%") }
}

fn exact(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The release lines (major.minor) of production servers that are up, in version order.
pub fn release_lines(rows: &[HealthRow], now: DateTime<Utc>) -> Vec<String> {
    let lines: BTreeSet<(u64, u64)> = rows
        .iter()
        .filter(|r| r.server_rank() == Some(Rank::Production) && r.is_up(now))
        .filter_map(|r| r.version.as_deref()?.parse::<meridian_model::Version>().ok())
        .map(|v| (v.0.major, v.0.minor))
        .collect();
    lines.into_iter().map(|(major, minor)| format!("{major}.{minor}")).collect()
}

pub fn render(rows: &[HealthRow], now: DateTime<Utc>, version: &str) -> ApiResult<String> {
    let mut groups: Vec<Group> = Vec::new();
    let ranks: Vec<Option<Rank>> = Rank::ALL.into_iter().map(Some).chain([None]).collect();
    for rank in ranks {
        let servers: Vec<Row> = rows
            .iter()
            .filter(|r| r.server_rank() == rank)
            .map(|r| {
                let up = r.is_up(now);
                Row {
                    id: r.id.to_string(),
                    name: r.name.clone().unwrap_or_else(|| "(unnamed)".into()),
                    host: r.host.clone(),
                    facility: r.kind == "facility",
                    up,
                    version: r.version.clone().unwrap_or_else(|| "—".into()),
                    latency: r.latency_ms.map_or_else(|| "—".into(), |ms| format!("{ms} ms")),
                    seen_ago: r.success_at.map(|at| time_since(at, now)).unwrap_or_default(),
                    seen_exact: r.success_at.map(exact).unwrap_or_default(),
                    error: r.error.clone().unwrap_or_default(),
                    error_ago: r.error_at.map(|at| time_since(at, now)).unwrap_or_default(),
                    error_exact: r.error_at.map(exact).unwrap_or_default(),
                    uptime_24h: percent(r.ok_24h, r.total_24h),
                    uptime_7d: percent(r.ok_7d, r.total_7d),
                }
            })
            .collect();
        if !servers.is_empty() {
            groups.push(Group {
                title: rank.map_or("Unranked", Rank::title),
                up: servers.iter().filter(|s| s.up).count(),
                servers,
            });
        }
    }
    let page = StatusPage {
        up_count: groups.iter().map(|g| g.up).sum(),
        total: rows.len(),
        groups,
        release_lines: release_lines(rows, now),
        generated: exact(now),
        version,
        refresh_secs: REFRESH_SECS,
        style: STYLE,
        script: SCRIPT,
    };
    page.render().map_err(ApiError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        let now = Utc::now();
        assert_eq!(time_since(now - chrono::Duration::seconds(5), now), "5 s ago");
        assert_eq!(time_since(now - chrono::Duration::minutes(7), now), "7 min ago");
        assert_eq!(time_since(now - chrono::Duration::hours(3), now), "3 h ago");
        assert_eq!(time_since(now - chrono::Duration::days(2), now), "2 d ago");
        assert_eq!(percent(0, 0), "—");
        assert_eq!(percent(1, 3), "33.3%");
    }

    #[test]
    fn policy_allows_exactly_the_inline_script_and_style() {
        let policy = content_security_policy();
        assert!(policy.contains(&hash(SCRIPT)) && policy.contains(&hash(STYLE)));
        assert!(!policy.contains("unsafe-inline"));
    }
}
