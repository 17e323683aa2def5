//! The status page rendered in each state, and the per-server gauges.

mod common;

use std::time::Duration;

use actix_web::test;
use chrono::Utc;
use diesel::prelude::*;
use discovery::model::{Kind, Rank};
use discovery::poller::PollerConfig;
use discovery::schema::statuses;
use discovery::servers::{self, NewServer};
use discovery::{SERVICE, State, configure, metrics::Gauges};
use meridian_platform::testing::{TestDb, test_platform};
use uuid::Uuid;

fn seed(db: &TestDb, name: &str, kind: Kind, rank: Option<Rank>) -> Uuid {
    let input = NewServer {
        name: Some(name.to_owned()),
        host: format!("https://{}.example.org", name.to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "-")),
        kind,
        rank,
        listed: Some(true),
        device_id: None,
    };
    servers::create(&mut db.conn(), input, None).unwrap().id
}

/// A status `minutes_ago`: a success with `version`, or an error.
fn status(db: &TestDb, server: Uuid, minutes_ago: i64, outcome: Result<&str, &str>) {
    let at = Utc::now() - chrono::Duration::minutes(minutes_ago);
    let (version, error) = match outcome {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    diesel::insert_into(statuses::table)
        .values((
            statuses::server_id.eq(server),
            statuses::created_at.eq(at),
            statuses::version.eq(version),
            statuses::error.eq(error),
            statuses::latency_ms.eq(37),
        ))
        .execute(&mut db.conn())
        .unwrap();
}

async fn page(db: &TestDb) -> (actix_web::http::header::HeaderMap, String) {
    let platform = test_platform(&SERVICE, db, &[]);
    let state = State::new(&platform, PollerConfig { timeout: Duration::from_secs(1), ..Default::default() });
    let app = test::init_service(platform.app(move |cfg| {
        cfg.app_data(state.clone());
        configure(cfg);
    }))
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/status").to_request()).await;
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    (headers, String::from_utf8(test::read_body(res).await.to_vec()).unwrap())
}

/// The `<tr>` of the server with `id`.
fn row(html: &str, id: Uuid) -> &str {
    let start = html.find(&format!("<tr data-id=\"{id}\"")).unwrap_or_else(|| panic!("no row for {id}"));
    let end = html[start..].find("</tr>").unwrap() + start;
    &html[start..end]
}

#[actix_rt::test]
async fn empty_page() {
    let db = TestDb::new(&SERVICE);
    let (headers, html) = page(&db).await;
    assert!(headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/html"));
    assert!(html.contains("No servers are registered yet."));
    assert!(html.contains("No production server is up."));
    assert!(html.contains("0 of 0 servers up"));
}

#[actix_rt::test]
async fn status_page_shows_each_state() {
    let db = TestDb::new(&SERVICE);
    let up = seed(&db, "Prod Up", Kind::Central, Some(Rank::Production));
    status(&db, up, 30, Err("timeout"));
    status(&db, up, 1, Ok("2.14.1"));
    let failing = seed(&db, "Prod Failing", Kind::Central, Some(Rank::Production));
    status(&db, failing, 2, Ok("2.13.0"));
    status(&db, failing, 1, Err("connect"));
    let stale = seed(&db, "Prod Stale", Kind::Central, Some(Rank::Production));
    status(&db, stale, 10, Ok("2.12.0"));
    let never = seed(&db, "Prod Never", Kind::Central, Some(Rank::Production));
    let other_line = seed(&db, "Prod Newer", Kind::Central, Some(Rank::Production));
    status(&db, other_line, 0, Ok("2.15.3"));
    let clone = seed(&db, "Clone Up", Kind::Central, Some(Rank::Clone));
    status(&db, clone, 0, Ok("3.0.0-rc.1"));
    let facility = seed(&db, "<script>alert(1)</script>", Kind::Facility, None);
    status(&db, facility, 3 * 60, Ok("2.14.0"));

    let (headers, html) = page(&db).await;

    // Policy: only the page's own inline script and style, by hash.
    let csp = headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("script-src 'sha256-") && csp.contains("style-src 'sha256-"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && csp.contains("default-src 'none'"));
    assert!(!html.contains("src=\"http") && !html.contains("href=\"//"), "no external assets");
    assert!(html.contains("<meta http-equiv=\"refresh\""));
    assert!(html.contains("shiftKey") && html.contains("clipboard"));

    // Groups in rank order; unranked last.
    let positions: Vec<usize> =
        ["<h2>Production", "<h2>Clone", "<h2>Unranked"].iter().map(|h| html.find(h).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    assert!(html.contains("3 / 5 up") || html.contains("2 / 5 up"));

    let r = row(&html, up);
    assert!(r.contains("class=\"up\"") && r.contains("2.14.1") && r.contains("37 ms"), "{r}");
    assert!(r.contains("min ago") && r.contains("title=\"20"), "time since with the exact time on hover: {r}");
    assert!(r.contains("timeout"), "the last error is shown even when up again");
    assert!(r.contains("50.0%"), "uptime: one success of two");
    let r = row(&html, failing);
    assert!(r.contains("class=\"down\"") && r.contains("connect"), "an error newer than the success: {r}");
    let r = row(&html, stale);
    assert!(r.contains("class=\"down\"") && r.contains("10 min ago"), "a success older than 5 minutes: {r}");
    let r = row(&html, never);
    assert!(r.contains("class=\"down\"") && r.contains("never"), "{r}");
    let r = row(&html, clone);
    assert!(r.contains("class=\"up\""));
    let r = row(&html, facility);
    assert!(
        !r.contains("<script>") && (r.contains("&lt;script&gt;") || r.contains("&#60;script&#62;")),
        "names are escaped: {r}"
    );
    assert!(r.contains("facility") && r.contains("3 h ago"));

    // Release lines of production servers that are up (not the stale, failing or clone ones).
    let header = &html[html.find("class=\"lines\"").unwrap()..html.find("class=\"meta\"").unwrap()];
    assert!(header.contains("<b>2.14</b>") && header.contains("<b>2.15</b>"), "{header}");
    assert!(!header.contains("2.13") && !header.contains("2.12") && !header.contains("3.0"), "{header}");
}

#[actix_rt::test]
async fn gauges_per_server_on_metrics() {
    let db = TestDb::new(&SERVICE);
    let up = seed(&db, "Gauged", Kind::Central, Some(Rank::Production));
    status(&db, up, 1, Ok("2.14.1"));
    let down = seed(&db, "Silent", Kind::Central, Some(Rank::Test));

    let platform = test_platform(&SERVICE, &db, &[]);
    let gauges = Gauges::register(platform.registry()).unwrap();
    let rows = discovery::statuses::health(&mut db.conn()).unwrap();
    gauges.update(&rows, Utc::now());
    let state = State::new(&platform, PollerConfig::default());
    let app = test::init_service(platform.app(move |cfg| {
        cfg.app_data(state.clone());
        configure(cfg);
    }))
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/metrics").to_request()).await;
    let text = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    let line = |prefix: &str| text.lines().find(|l| l.starts_with(prefix)).map(str::to_owned);
    let up_line = line("discovery_server_up{").unwrap();
    assert!(text.contains(&format!("server_id=\"{up}\"")) && text.contains(&format!("server_id=\"{down}\"")));
    assert!(up_line.ends_with(" 1") || up_line.ends_with(" 0"), "{up_line}");
    let up_value = text.lines().find(|l| l.starts_with("discovery_server_up{") && l.contains(&up.to_string())).unwrap();
    assert!(up_value.ends_with(" 1"), "{up_value}");
    let down_value =
        text.lines().find(|l| l.starts_with("discovery_server_up{") && l.contains(&down.to_string())).unwrap();
    assert!(down_value.ends_with(" 0"), "{down_value}");
    assert!(text.lines().any(|l| l.starts_with("discovery_server_latency_milliseconds{") && l.ends_with(" 37")));
    assert!(text.lines().any(|l| l.starts_with("discovery_server_version_info{") && l.contains("version=\"2.14.1\"")));
}
