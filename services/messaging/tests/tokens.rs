//! Tokens: the Caller extractor's refusals, the JWK set and the `token` subcommand.

mod common;

use common::{call, ctx, message};
use messaging::auth::{self, Claims, Metadata};
use serde_json::json;

#[actix_rt::test]
async fn missing_token_is_401_and_bad_tokens_are_403() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let body = Some(message("p1", "patient", "c1", "clinician", 0));

    let r = call(&app, "POST", "/dhos/v2/message", None, body.clone(), &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.headers.get("www-authenticate").unwrap(), "Bearer");

    let r = call(&app, "POST", "/dhos/v2/message", Some("not.a.jwt"), body.clone(), &[]).await;
    assert_eq!(r.status, 403);

    // Signed by someone else.
    let other = ctx_with_secret("another-secret-entirely-00000000000000");
    let foreign = other.patient("p1");
    assert_eq!(call(&app, "POST", "/dhos/v2/message", Some(&foreign), body.clone(), &[]).await.status, 403);

    // Expired.
    let expired = ctx
        .state
        .keys
        .issue(&Claims {
            iss: ctx.state.keys.issuer().into(),
            aud: ctx.state.keys.audience().into(),
            exp: chrono::Utc::now().timestamp() - 3600,
            iat: chrono::Utc::now().timestamp() - 7200,
            scope: "write:gdm_message".into(),
            metadata: Metadata { patient_id: Some("p1".into()), ..Metadata::default() },
        })
        .unwrap();
    assert_eq!(call(&app, "POST", "/dhos/v2/message", Some(&expired), body.clone(), &[]).await.status, 403);

    // Two identities in one token.
    let two = auth::issue(
        &ctx.state.keys,
        Metadata { patient_id: Some("p1".into()), system_id: Some("s".into()), ..Metadata::default() },
        "write:gdm_message",
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(call(&app, "POST", "/dhos/v2/message", Some(&two), body.clone(), &[]).await.status, 403);

    // Valid token, missing scope.
    let reader = ctx.system("read:gdm_message");
    let r = call(&app, "POST", "/dhos/v2/message", Some(&reader), body.clone(), &[]).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.body["code"], "MissingScope");

    // And the right one passes.
    let r = call(&app, "POST", "/dhos/v2/message", Some(&ctx.patient("p1")), body, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

fn ctx_with_secret(secret: &str) -> common::Ctx {
    ctx(&[("JWT_SECRET", secret)])
}

#[actix_rt::test]
async fn jwks_is_served_and_empty_with_a_shared_secret() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let r = call(&app, "GET", "/.well-known/jwks.json", None, None, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"keys": []}));
}

#[actix_rt::test]
async fn openapi_lists_every_route() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let r = call(&app, "GET", "/openapi.json", None, None, &[]).await;
    let paths = r.body["paths"].as_object().unwrap();
    for path in [
        "/dhos/v2/message",
        "/dhos/v1/message/{message_id}",
        "/dhos/v1/sender/{sender_id}/receiver/{receiver_id}/active/message",
        "/dhos/v1/activation/{activation_code}",
        "/dhos/v1/clinician/jwt",
        "/.well-known/jwks.json",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the OpenAPI document");
    }
}

#[core::prelude::v1::test]
fn token_subcommand_prints_a_verifiable_system_token() {
    let secret = "a-secret-for-the-token-subcommand-0000000";
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_messaging"))
        .args([
            "token",
            "--system-id",
            "bootstrap",
            "--scope",
            "write:send_device write:send_clinician",
            "--ttl",
            "120",
        ])
        .env("JWT_SECRET", secret)
        .env("DATABASE_URL", "postgres://127.0.0.1:1/unused")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    let ctx = ctx(&[("JWT_SECRET", secret)]);
    let claims: Claims = ctx.state.keys.verify(token.trim()).unwrap();
    assert_eq!(claims.metadata.system_id.as_deref(), Some("bootstrap"));
    assert_eq!(claims.scope, "write:send_device write:send_clinician");
    assert!(claims.exp - claims.iat <= 120);
    assert_eq!(claims.aud, "meridian-messaging");
}

/// RS256 with keys from files (the fixtures are throwaway test keys): the JWK set publishes the
/// signing key under its kid, and during a rotation the previous key still verifies.
#[actix_rt::test]
async fn rs256_keys_jwks_and_rotation() {
    let fixture = |name: &str| format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let (a, a_pub, b, b_pub) =
        (fixture("rsa-a.pem"), fixture("rsa-a.pub.pem"), fixture("rsa-b.pem"), fixture("rsa-b.pub.pem"));
    let old = ctx(&[("JWT_PRIVATE_KEY_FILE", &a), ("JWT_PUBLIC_KEY_FILE", &a_pub)]);
    let app = old.app().await;
    let r = call(&app, "GET", "/.well-known/jwks.json", None, None, &[]).await;
    let keys = r.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "RSA");
    let kid = keys[0]["kid"].as_str().unwrap().to_owned();
    let old_token = old.system("read:gdm_message");
    assert_eq!(call(&app, "GET", "/dhos/v1/receiver/x/message", Some(&old_token), None, &[]).await.status, 200);

    // Rotated: signs with b, still accepts a.
    let rotated = ctx(&[
        ("JWT_PRIVATE_KEY_FILE", &b),
        ("JWT_PUBLIC_KEY_FILE", &b_pub),
        ("MESSAGING_JWT_PREVIOUS_PUBLIC_KEY_FILE", &a_pub),
    ]);
    let app = rotated.app().await;
    let r = call(&app, "GET", "/.well-known/jwks.json", None, None, &[]).await;
    assert_ne!(r.body["keys"][0]["kid"], kid.as_str());
    assert_eq!(r.body["keys"][1]["kid"], kid.as_str(), "the previous key stays published during the rotation");
    assert_eq!(r.body["keys"][1]["n"], keys[0]["n"], "and is the same key");
    assert_eq!(call(&app, "GET", "/dhos/v1/receiver/x/message", Some(&old_token), None, &[]).await.status, 200);
    let new_token = rotated.system("read:gdm_message");
    assert_eq!(call(&app, "GET", "/dhos/v1/receiver/x/message", Some(&new_token), None, &[]).await.status, 200);

    // After the rotation window the old key is gone; an HS256 token is refused by an RS256 service.
    let done = ctx(&[("JWT_PRIVATE_KEY_FILE", &b), ("JWT_PUBLIC_KEY_FILE", &b_pub)]);
    let app = done.app().await;
    assert_eq!(call(&app, "GET", "/dhos/v1/receiver/x/message", Some(&old_token), None, &[]).await.status, 403);
    let hs = ctx(&[]).system("read:gdm_message");
    assert_eq!(call(&app, "GET", "/dhos/v1/receiver/x/message", Some(&hs), None, &[]).await.status, 403);
}
