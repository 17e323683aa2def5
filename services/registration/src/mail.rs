//! Rendering a broadcast into one recipient's message, and handing it to SMTP (or the dev outbox).

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use uuid::Uuid;

use crate::token;

/// What every message of this process shares.
#[derive(Debug, Clone)]
pub struct MailContext {
    pub from: Mailbox,
    /// Base URL of the service as recipients reach it.
    pub public_url: String,
    pub unsubscribe_key: Vec<u8>,
}

impl MailContext {
    pub fn new(mail_from: &str, public_url: &str, unsubscribe_key: &[u8]) -> Result<Self, String> {
        Ok(MailContext {
            from: mail_from.parse().map_err(|e| format!("MAIL_FROM {mail_from:?}: {e}"))?,
            public_url: public_url.trim_end_matches('/').to_owned(),
            unsubscribe_key: unsubscribe_key.to_vec(),
        })
    }

    pub fn unsubscribe_url(&self, registration: Uuid) -> String {
        format!(
            "{}/api/registration/unsubscribe?token={}",
            self.public_url,
            token::sign(&self.unsubscribe_key, registration)
        )
    }
}

/// One broadcast as one recipient receives it.
pub struct Outgoing<'a> {
    pub broadcast: Uuid,
    pub registration: Uuid,
    pub to: &'a str,
    pub title: &'a str,
    pub contents: &'a str,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
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

/// `**bold**` on already-escaped text (an unpaired `**` stays as typed).
fn bold(escaped: &str) -> String {
    let parts: Vec<&str> = escaped.split("**").collect();
    if parts.len() < 3 {
        return escaped.to_owned();
    }
    let mut out = String::with_capacity(escaped.len() + 16);
    let pairs = (parts.len() - 1) / 2;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            let closing = i % 2 == 0;
            if i <= pairs * 2 {
                out.push_str(if closing { "</strong>" } else { "<strong>" });
            } else {
                out.push_str("**");
            }
        }
        out.push_str(part);
    }
    out
}

/// The board's text as HTML: everything escaped; blank lines separate paragraphs, single line
/// breaks are kept, `**text**` is bold. Nothing the board types can become markup of its own.
pub fn contents_html(contents: &str) -> String {
    let normalised = contents.replace("\r\n", "\n");
    normalised
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let lines: Vec<String> = p.lines().map(|line| bold(&escape_html(line))).collect();
            format!("<p style=\"margin:0 0 1em\">{}</p>", lines.join("<br>\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn render_text(contents: &str, unsubscribe_url: &str) -> String {
    format!(
        "{}\n\n-- \nYou receive this because this address registered an installation.\nUnsubscribe: {unsubscribe_url}\n",
        contents.replace("\r\n", "\n").trim_end()
    )
}

pub fn render_html(title: &str, contents: &str, unsubscribe_url: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
<body style=\"margin:0;padding:0;background:#f4f5f7\">\n\
<div style=\"max-width:40em;margin:0 auto;padding:1.5em;background:#fff;font-family:Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5;color:#1f2328\">\n\
<h1 style=\"font-size:1.35em;margin:0 0 1em\">{title}</h1>\n{body}\n\
<hr style=\"border:0;border-top:1px solid #d0d7de;margin:2em 0 1em\">\n\
<p style=\"font-size:.85em;color:#57606a;margin:0\">You receive this because this address registered an installation. \
<a href=\"{url}\" style=\"color:#57606a\">Unsubscribe</a>.</p>\n</div></body></html>\n",
        title = escape_html(title),
        body = contents_html(contents),
        url = escape_html(unsubscribe_url),
    )
}

/// The message for one recipient: multipart/alternative (plain text and HTML), RFC 8058 one-click
/// unsubscribe headers, and a Message-ID derived from broadcast and registration, so a copy sent
/// twice (see docs: the crash window) carries the same id and receiving systems can fold it.
pub fn render(ctx: &MailContext, out: &Outgoing<'_>) -> Result<Message, String> {
    let to: Mailbox = out.to.parse().map_err(|e| format!("recipient {:?}: {e}", out.to))?;
    let url = ctx.unsubscribe_url(out.registration);
    let domain = ctx.from.email.domain().to_owned();
    Message::builder()
        .from(ctx.from.clone())
        .to(to)
        .subject(out.title)
        .message_id(Some(format!("<{}.{}@{domain}>", out.broadcast.simple(), out.registration.simple())))
        .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("List-Unsubscribe"), format!("<{url}>")))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
            "List-Unsubscribe=One-Click".to_owned(),
        ))
        .multipart(MultiPart::alternative_plain_html(
            render_text(out.contents, &url),
            render_html(out.title, out.contents, &url),
        ))
        .map_err(|e| format!("message: {e}"))
}

/// Why a send did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The server answered with a refusal: permanent (5xx) or temporary (4xx).
    Rejected { permanent: bool, message: String },
    /// No answer: the server is down, unreachable or too slow. Nothing is counted against the
    /// delivery; it waits for the server.
    Unavailable(String),
}

/// Where messages go.
#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

impl Mailer {
    /// Builds the SMTP transport (with a connection pool of `pool_size`). Must run inside a Tokio
    /// runtime: the pool starts a background task.
    pub fn smtp(url: &str, pool_size: u32, timeout: Duration) -> Result<Mailer, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("SMTP_URL: {e}"))?
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(pool_size.max(1)).min_idle(0))
            .build();
        Ok(Mailer::Smtp(transport))
    }

    pub async fn send(&self, message: &Message) -> Result<(), SendError> {
        match self {
            Mailer::Smtp(transport) => transport.send(message.clone()).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::Rejected { permanent: true, message: e.to_string() }
                } else if e.is_transient() {
                    SendError::Rejected { permanent: false, message: e.to_string() }
                } else {
                    SendError::Unavailable(e.to_string())
                }
            }),
            Mailer::Outbox(dir) => write_outbox(dir, message).map_err(|e| SendError::Unavailable(e.to_string())),
        }
    }
}

/// One `.eml` file per recipient, written under a temporary name and renamed into place.
fn write_outbox(dir: &Path, message: &Message) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let to = message.envelope().to().first().map(ToString::to_string).unwrap_or_default().replace('/', "_");
    let name = format!("{}-{}-{to}.eml", chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"), Uuid::new_v4().simple());
    let tmp = dir.join(format!(".{name}"));
    std::fs::write(&tmp, message.formatted())?;
    std::fs::rename(tmp, dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> MailContext {
        MailContext::new("Board <board@example.org>", "https://reg.example.org/", b"key-key-key-key-key-key-key-key-")
            .unwrap()
    }

    #[test]
    fn html_escapes_everything_the_board_types() {
        let html = render_html(
            "<script>alert(1)</script>",
            "Hello <b>there</b> & \"friends\"\n\n**Update** now: <a href=x onclick=y>link</a>",
            "https://x/?a=1&b=\"2\"",
        );
        assert!(!html.contains("<script>"));
        assert!(!html.contains("<b>"));
        assert!(!html.contains("<a href=x"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("<strong>Update</strong>"));
        assert!(html.contains("href=\"https://x/?a=1&amp;b=&quot;2&quot;\""));
    }

    #[test]
    fn bold_needs_pairs() {
        assert_eq!(bold("a **b** c"), "a <strong>b</strong> c");
        assert_eq!(bold("a ** b"), "a ** b");
        assert_eq!(bold("**a** **b"), "<strong>a</strong> **b");
    }

    #[test]
    fn message_has_both_parts_and_unsubscribe_headers() {
        let (b, r) = (Uuid::new_v4(), Uuid::new_v4());
        let message = render(
            &ctx(),
            &Outgoing {
                broadcast: b,
                registration: r,
                to: "ana@example.org",
                title: "Patch 7.0.2",
                contents: "Please update.",
            },
        )
        .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("text/plain"));
        assert!(text.contains("text/html"));
        assert!(text.contains("List-Unsubscribe: <https://reg.example.org/api/registration/unsubscribe?token="));
        assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        assert!(text.contains(&format!("Message-ID: <{}.{}@example.org>", b.simple(), r.simple())));
    }
}
