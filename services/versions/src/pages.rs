//! The HTML pages: server-rendered, self-contained (inline CSS, inline SVG), no script.

use askama::Template;
use meridian_platform::ApiError;
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

use crate::catalogue::{Entry, Snapshot};

/// Renders a changelog's Markdown to HTML that cannot carry markup of its own: raw HTML in the
/// source is shown as text, images become plain links (nothing is loaded), and links keep only
/// http(s), mailto and relative targets.
pub fn render_markdown(text: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(text, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link { link_type, dest_url, title, id } | Tag::Image { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Link { link_type, dest_url: safe_link(dest_url), title, id })
        }
        Event::End(TagEnd::Image) => Event::End(TagEnd::Link),
        other => other,
    });
    let mut html = String::with_capacity(text.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

fn safe_link(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim().to_ascii_lowercase();
    let scheme_end = lower.find(':');
    let first_separator = lower.find(['/', '?', '#']);
    let relative = match (scheme_end, first_separator) {
        (None, _) => true,
        (Some(colon), Some(sep)) => sep < colon,
        (Some(_), None) => false,
    };
    let allowed = lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:");
    if (allowed || relative) && !lower.starts_with("//") { url } else { CowStr::Borrowed("#") }
}

/// A QR code of `text` as an inline SVG element (no XML declaration, no namespace URL).
pub fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(192, 192)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build();
    let start = svg.find("<svg")?;
    Some(svg[start..].replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1).replacen("<svg", "<svg role=\"img\"", 1))
}

fn label(entry: &Entry) -> String {
    entry.version.to_string()
}

fn human_size(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

struct VersionItem {
    label: String,
    published: bool,
    date: String,
    changelog_html: String,
    artifact_count: usize,
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    versions: Vec<VersionItem>,
}

struct ArtifactItem {
    artifact_type: String,
    platform: String,
    url: String,
    sha256: Option<String>,
    size: Option<String>,
    qr: Option<String>,
}

fn artifact_items<'a>(artifacts: impl Iterator<Item = &'a crate::model::Artifact>, with_qr: bool) -> Vec<ArtifactItem> {
    artifacts
        .map(|a| ArtifactItem {
            artifact_type: a.artifact_type.clone(),
            platform: a.platform.clone(),
            url: a.download_url.clone(),
            sha256: a.sha256.clone(),
            size: a.size.map(human_size),
            qr: if with_qr { qr_svg(&a.download_url) } else { None },
        })
        .collect()
}

fn is_mobile(artifact: &crate::model::Artifact) -> bool {
    artifact.artifact_type.eq_ignore_ascii_case("mobile")
}

#[derive(Template)]
#[template(path = "version.html")]
struct VersionPage {
    label: String,
    published: bool,
    date: String,
    changelog_html: String,
    artifacts: Vec<ArtifactItem>,
    has_mobile: bool,
}

#[derive(Template)]
#[template(path = "mobile.html")]
struct MobilePage {
    asked: String,
    label: String,
    artifacts: Vec<ArtifactItem>,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: String,
    detail: String,
}

fn render(template: &impl Template) -> String {
    template.render().unwrap_or_else(|err| {
        log::error!("a page failed to render: {err}");
        "<!doctype html><title>Error</title><p>This page could not be rendered.</p>".to_owned()
    })
}

pub fn index_page(snapshot: &Snapshot) -> String {
    let versions = snapshot
        .entries
        .iter()
        .map(|e| VersionItem {
            label: label(e),
            published: e.row.published,
            date: e.row.created_at.format("%Y-%m-%d").to_string(),
            changelog_html: render_markdown(&e.row.changelog),
            artifact_count: e.artifacts.len(),
        })
        .collect();
    render(&IndexPage { versions })
}

pub fn version_page(entry: &Entry) -> String {
    render(&VersionPage {
        label: label(entry),
        published: entry.row.published,
        date: entry.row.created_at.format("%Y-%m-%d").to_string(),
        changelog_html: render_markdown(&entry.row.changelog),
        artifacts: artifact_items(entry.artifacts.iter(), false),
        has_mobile: entry.artifacts.iter().any(is_mobile),
    })
}

pub fn mobile_page(asked: &str, entry: &Entry) -> String {
    render(&MobilePage {
        asked: asked.to_owned(),
        label: label(entry),
        artifacts: artifact_items(entry.artifacts.iter().filter(|a| is_mobile(a)), true),
    })
}

pub fn error_page(err: &ApiError) -> String {
    render(&ErrorPage { status: err.status.as_u16(), title: err.title.clone(), detail: err.detail.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_in_markdown_is_shown_as_text() {
        let html = render_markdown("# Notes\n\n<script>alert(1)</script>\n\nSee <b onclick=x>this</b> & **that**.\n");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<b "), "{html}");
        assert!(html.contains("<strong>that</strong>"), "{html}");
        assert!(html.contains("<h1>Notes</h1>"), "{html}");
    }

    #[test]
    fn images_become_links_and_unsafe_links_are_defused() {
        let html = render_markdown(
            "![logo](https://cdn.example.org/logo.png) [x](javascript:alert(1)) [y](/versions) [z](https://example.org)",
        );
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("<a href=\"https://cdn.example.org/logo.png\">logo</a>"), "{html}");
        assert!(!html.contains("javascript"), "{html}");
        assert!(html.contains("href=\"/versions\""), "{html}");
        assert!(html.contains("href=\"https://example.org\""), "{html}");
        let protocol_relative = render_markdown("[p](//evil.example.org/x)");
        assert!(!protocol_relative.contains("evil"), "{protocol_relative}");
    }

    #[test]
    fn qr_codes_are_inline_svg() {
        let svg = qr_svg("https://dl.example.org/tamanu-2.1.0.apk").unwrap();
        assert!(svg.starts_with("<svg role=\"img\""), "{}", &svg[..80]);
        assert!(!svg.contains("http"), "no URL at all in the SVG itself");
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(48_213_004), "46.0 MiB");
    }
}
