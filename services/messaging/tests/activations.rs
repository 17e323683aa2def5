//! Activations: patient codes and PINs, ward devices, clinicians logging in through devices.

mod common;

use common::{call, ctx};
use diesel::prelude::*;
use messaging::auth::Claims;
use serde_json::json;

fn claims(ctx: &common::Ctx, jwt: &str) -> Claims {
    ctx.state.keys.verify(jwt).unwrap()
}

#[actix_rt::test]
async fn patient_activation_pin_code_jwt_and_every_refusal() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let clinician = ctx.clinician("c1", &["ward-1"]);

    // Scopes: creating needs write:gdm_activation.
    let r = call(&app, "POST", "/dhos/v1/patient/p1/activation", Some(&ctx.patient("p1")), None, &[]).await;
    assert_eq!(r.status, 403);
    assert_eq!(call(&app, "POST", "/dhos/v1/patient/p1/activation", None, None, &[]).await.status, 401);

    let first = call(&app, "POST", "/dhos/v1/patient/p1/activation", Some(&clinician), None, &[]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let code = first.body["activation_code"].as_str().unwrap().to_owned();
    let pin = first.body["otp"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 30);
    assert_eq!(pin.len(), 4);
    for c in code.chars().chain(pin.chars()) {
        assert!(!"0O1IL".contains(c), "look-alike {c} in {code}/{pin}");
    }
    assert!(first.body["expires_at"].is_string());

    // A second request while unused: same code, new PIN; the old PIN stops working.
    let second = call(&app, "POST", "/dhos/v1/patient/p1/activation", Some(&clinician), None, &[]).await;
    assert_eq!(second.body["activation_code"], code.as_str());
    let new_pin = second.body["otp"].as_str().unwrap().to_owned();
    assert_ne!(new_pin, pin);

    // Nothing is stored in clear.
    {
        let mut conn = ctx.db.conn();
        let stored: Vec<(String, String, Option<String>)> =
            diesel::sql_query("SELECT code_lookup, code_hash, otp_hash FROM activations")
                .load::<StoredSecrets>(&mut conn)
                .unwrap()
                .into_iter()
                .map(|s| (s.code_lookup, s.code_hash, s.otp_hash))
                .collect();
        assert_eq!(stored.len(), 1);
        let (lookup, hash, otp_hash) = &stored[0];
        assert_ne!(lookup, &code);
        assert!(hash.starts_with("$argon2id$") && !hash.contains(&code));
        assert!(otp_hash.as_deref().unwrap().starts_with("$argon2id$"));
    }

    let redeem = |pin: &str| json!({"otp": pin});
    let uri = format!("/dhos/v1/activation/{code}");
    assert_eq!(call(&app, "POST", &uri, None, Some(redeem(&pin)), &[]).await.status, 401, "the old PIN");
    assert_eq!(call(&app, "POST", &uri, None, None, &[]).await.status, 400, "no PIN");
    assert_eq!(call(&app, "POST", &uri, None, Some(json!({"otp": new_pin, "x": 1})), &[]).await.status, 400);
    assert_eq!(
        call(&app, "POST", "/dhos/v1/activation/NOSUCHCODE", None, Some(redeem(&new_pin)), &[]).await.status,
        404
    );
    assert_eq!(call(&app, "POST", &format!("{uri}?type=send_entry"), None, None, &[]).await.status, 404, "wrong kind");

    // Case does not matter to a person typing.
    let r = call(
        &app,
        "POST",
        &format!("/dhos/v1/activation/{}", code.to_lowercase()),
        None,
        Some(redeem(&new_pin.to_lowercase())),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["patient_id"], "p1");
    let authorisation = r.body["authorisation_code"].as_str().unwrap().to_owned();

    // Single use.
    assert_eq!(call(&app, "POST", &uri, None, Some(redeem(&new_pin)), &[]).await.status, 404);

    // The authorisation code: header required, for this patient only, once.
    assert_eq!(call(&app, "GET", "/dhos/v1/patient/p1/jwt", None, None, &[]).await.status, 401);
    let header = [("x-authorisation-code", authorisation.as_str())];
    assert_eq!(call(&app, "GET", "/dhos/v1/patient/p2/jwt", None, None, &header).await.status, 401);
    let r = call(&app, "GET", "/dhos/v1/patient/p1/jwt", None, None, &header).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let jwt = r.body["jwt"].as_str().unwrap().to_owned();
    let c = claims(&ctx, &jwt);
    assert_eq!(c.metadata.patient_id.as_deref(), Some("p1"));
    assert!(c.metadata.clinician_id.is_none() && c.metadata.device_id.is_none());
    assert_eq!(c.exp - c.iat, 15 * 60);
    assert!(c.scope.split(' ').any(|s| s == "write:gdm_message"));
    assert_eq!(call(&app, "GET", "/dhos/v1/patient/p1/jwt", None, None, &header).await.status, 401, "used");

    // The completed activation is listed (without secrets); a fresh request makes a new code.
    let r = call(&app, "GET", "/dhos/v1/patient/p1/activation", Some(&clinician), None, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert!(!r.body.to_string().contains(&code));
    let third = call(&app, "POST", "/dhos/v1/patient/p1/activation", Some(&clinician), None, &[]).await;
    assert_ne!(third.body["activation_code"], code.as_str());

    // Logins are audited, successes and failures.
    let mut conn = ctx.db.conn();
    let (ok, failed): (i64, i64) = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE success) AS ok, count(*) FILTER (WHERE NOT success) AS failed FROM login_audit",
    )
    .get_result::<Counts>(&mut conn)
    .map(|c| (c.ok, c.failed))
    .unwrap();
    assert_eq!(ok, 2);
    assert!(failed >= 5, "{failed}");
}

#[derive(QueryableByName)]
struct StoredSecrets {
    #[diesel(sql_type = diesel::sql_types::Text)]
    code_lookup: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    code_hash: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    otp_hash: Option<String>,
}

#[derive(QueryableByName)]
struct Counts {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    ok: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    failed: i64,
}

#[actix_rt::test]
async fn ten_wrong_pins_lock_the_activation_and_codes_expire() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let clinician = ctx.clinician("c1", &[]);
    let r = call(&app, "POST", "/dhos/v1/patient/p1/activation", Some(&clinician), None, &[]).await;
    let code = r.body["activation_code"].as_str().unwrap().to_owned();
    let pin = r.body["otp"].as_str().unwrap().to_owned();
    let wrong = if pin == "AAAA" { "BBBB" } else { "AAAA" };
    let uri = format!("/dhos/v1/activation/{code}");
    for attempt in 1..=10 {
        let r = call(&app, "POST", &uri, None, Some(json!({"otp": wrong})), &[]).await;
        assert_eq!(r.status, 401, "attempt {attempt}");
    }
    let r = call(&app, "POST", &uri, None, Some(json!({"otp": pin})), &[]).await;
    assert_eq!(r.status, 403, "locked even for the right PIN");
    assert_eq!(r.body["code"], "ActivationLocked");

    // A new PIN from the clinician unlocks it (same code).
    let r = call(&app, "POST", "/dhos/v1/patient/p1/activation", Some(&clinician), None, &[]).await;
    assert_eq!(r.body["activation_code"], code.as_str());
    let r = call(&app, "POST", &uri, None, Some(json!({"otp": r.body["otp"]})), &[]).await;
    assert_eq!(r.status, 200);

    // Expiry.
    let r = call(&app, "POST", "/dhos/v1/patient/p2/activation", Some(&clinician), None, &[]).await;
    let code = r.body["activation_code"].as_str().unwrap().to_owned();
    let pin = r.body["otp"].as_str().unwrap().to_owned();
    diesel::sql_query("UPDATE activations SET expires_at = now() - interval '1 second' WHERE subject_id = 'p2'")
        .execute(&mut ctx.db.conn())
        .unwrap();
    let r = call(&app, "POST", &format!("/dhos/v1/activation/{code}"), None, Some(json!({"otp": pin})), &[]).await;
    assert_eq!(r.status, 404);
}

#[actix_rt::test]
async fn failed_guesses_are_rate_limited_per_client_address() {
    let ctx = common::ctx(&[("MESSAGING_LOGIN_RATE", "3/m")]);
    let app = ctx.app().await;
    let guess = |n: u32| {
        actix_web::test::TestRequest::post()
            .uri(&format!("/dhos/v1/activation/GUESS{n}?type=send_entry"))
            .peer_addr("198.51.100.7:4000".parse().unwrap())
            .to_request()
    };
    for n in 0..3 {
        assert_eq!(actix_web::test::call_service(&app, guess(n)).await.status(), 404);
    }
    let res = actix_web::test::call_service(&app, guess(9)).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    // Another address is not affected.
    let other = actix_web::test::TestRequest::post()
        .uri("/dhos/v1/activation/GUESS?type=send_entry")
        .peer_addr("198.51.100.8:4000".parse().unwrap())
        .to_request();
    assert_eq!(actix_web::test::call_service(&app, other).await.status(), 404);
}

#[actix_rt::test]
async fn devices_register_activate_and_log_clinicians_in() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let admin = ctx.system("read:send_device write:send_device write:send_clinician");

    // Devices: scopes, create, list with filters, get, patch.
    let new = json!({"location_id": "ward-1", "description": "Ward 1 tablet"});
    assert_eq!(
        call(&app, "POST", "/dhos/v1/device", Some(&ctx.system("read:send_device")), Some(new.clone()), &[])
            .await
            .status,
        403
    );
    let r = call(&app, "POST", "/dhos/v1/device", Some(&admin), Some(new), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let device = r.body["uuid"].as_str().unwrap().to_owned();
    assert_eq!(r.body["active"], true);
    let r = call(
        &app,
        "POST",
        "/dhos/v1/device",
        Some(&admin),
        Some(json!({"location_id": "ward-2", "description": "", "active": false})),
        &[],
    )
    .await;
    let other_device = r.body["uuid"].as_str().unwrap().to_owned();
    assert_eq!(
        call(
            &app,
            "POST",
            "/dhos/v1/device",
            Some(&admin),
            Some(json!({"location_id": "w", "description": "d", "colour": 1})),
            &[]
        )
        .await
        .status,
        400
    );
    let r = call(&app, "GET", "/dhos/v1/device?location_id=ward-1,ward-9", Some(&admin), None, &[]).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = call(&app, "GET", "/dhos/v1/device?active=false", Some(&admin), None, &[]).await;
    assert_eq!(r.body[0]["uuid"], other_device.as_str());
    assert_eq!(
        call(&app, "GET", &format!("/dhos/v1/device/{device}"), Some(&admin), None, &[]).await.body["location_id"],
        "ward-1"
    );
    assert_eq!(
        call(&app, "GET", &format!("/dhos/v1/device/{}", uuid::Uuid::new_v4()), Some(&admin), None, &[]).await.status,
        404
    );

    // Device activation: code -> authorisation code -> device JWT carrying its location.
    let r = call(&app, "POST", &format!("/dhos/v1/device/{device}/activation"), Some(&admin), None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let code = r.body["code"].as_str().unwrap().to_owned();
    assert!(r.body["expires_at"].is_string());
    assert_eq!(
        call(&app, "POST", &format!("/dhos/v1/device/{other_device}/activation"), Some(&admin), None, &[]).await.status,
        403
    );
    assert_eq!(
        call(&app, "POST", &format!("/dhos/v1/activation/{code}"), None, Some(json!({"otp": "AAAA"})), &[])
            .await
            .status,
        404,
        "not a patient code"
    );
    let r = call(&app, "POST", &format!("/dhos/v1/activation/{code}?type=send_entry"), None, None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["device_id"], device.as_str());
    let authorisation = r.body["authorisation_code"].as_str().unwrap().to_owned();
    let header = [("x-authorisation-code", authorisation.as_str())];
    assert_eq!(
        call(&app, "GET", &format!("/dhos/v1/device/{other_device}/jwt"), None, None, &header).await.status,
        401
    );
    let r = call(&app, "GET", &format!("/dhos/v1/device/{device}/jwt"), None, None, &header).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let device_jwt = r.body["jwt"].as_str().unwrap().to_owned();
    let c = claims(&ctx, &device_jwt);
    assert_eq!(c.metadata.device_id.as_deref(), Some(device.as_str()));
    assert_eq!(c.metadata.locations, Some(vec!["ward-1".to_owned()]));
    assert_eq!(c.exp - c.iat, 24 * 3600);

    // Clinicians: create (201), duplicate (409), then the device logs them in.
    let clinician = json!({"clinician_id": "c1", "login_active": true, "products": [{"product_name": "SEND"}],
        "groups": ["SEND Clinician"], "send_entry_identifier": "3412", "contract_expiry_eod_date": "2099-12-31",
        "locations": ["ward-3"]});
    let r = call(&app, "POST", "/dhos/v1/clinician", Some(&admin), Some(clinician.clone()), &[]).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(call(&app, "POST", "/dhos/v1/clinician", Some(&admin), Some(clinician), &[]).await.status, 409);
    assert_eq!(
        call(
            &app,
            "POST",
            "/dhos/v1/clinician",
            Some(&device_jwt),
            Some(json!({"clinician_id": "c2", "login_active": true})),
            &[]
        )
        .await
        .status,
        403
    );

    let login = "/dhos/v1/clinician/jwt?send_entry_identifier=3412";
    assert_eq!(call(&app, "GET", login, Some(&admin), None, &[]).await.status, 403, "a system token is not a device");
    let r = call(&app, "GET", login, Some(&device_jwt), None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let c = claims(&ctx, r.body["jwt"].as_str().unwrap());
    assert_eq!(c.metadata.clinician_id.as_deref(), Some("c1"));
    assert_eq!(c.metadata.referring_device_id.as_deref(), Some(device.as_str()));
    assert_eq!(c.metadata.locations, Some(vec!["ward-3".to_owned(), "ward-1".to_owned()]));
    assert_eq!(c.exp - c.iat, 15 * 60);
    assert_eq!(
        call(&app, "GET", "/dhos/v1/clinician/jwt?send_entry_identifier=9999", Some(&device_jwt), None, &[])
            .await
            .status,
        404
    );

    // Refusals: not in a clinician group, past the contract date, inactive.
    let patch = |body: serde_json::Value| call(&app, "PATCH", "/dhos/v1/clinician/c1", Some(&admin), Some(body), &[]);
    assert_eq!(patch(json!({"groups": ["Patient"]})).await.status, 200);
    assert_eq!(call(&app, "GET", login, Some(&device_jwt), None, &[]).await.status, 403);
    assert_eq!(
        patch(json!({"groups": ["SEND Clinician"], "contract_expiry_eod_date": "2020-01-01"})).await.status,
        200
    );
    assert_eq!(call(&app, "GET", login, Some(&device_jwt), None, &[]).await.status, 403);
    assert_eq!(patch(json!({"contract_expiry_eod_date": "2099-01-01", "login_active": false})).await.status, 200);
    assert_eq!(call(&app, "GET", login, Some(&device_jwt), None, &[]).await.status, 403);
    assert_eq!(patch(json!({"login_active": true})).await.status, 200);
    assert_eq!(call(&app, "GET", login, Some(&device_jwt), None, &[]).await.status, 200);
    assert_eq!(patch(json!({"clinician_id": "c9"})).await.status, 400);
    assert_eq!(
        call(&app, "PATCH", "/dhos/v1/clinician/nobody", Some(&admin), Some(json!({"login_active": true})), &[])
            .await
            .status,
        404
    );

    // A deactivated device can neither log clinicians in nor get a new JWT.
    let r =
        call(&app, "PATCH", &format!("/dhos/v1/device/{device}"), Some(&admin), Some(json!({"active": false})), &[])
            .await;
    assert_eq!(r.body["active"], false);
    assert_eq!(call(&app, "GET", login, Some(&device_jwt), None, &[]).await.status, 403);
    let r = call(&app, "PATCH", &format!("/dhos/v1/device/{device}"), Some(&admin), Some(json!({"active": true})), &[])
        .await;
    assert_eq!(r.status, 200);
    let code = call(&app, "POST", &format!("/dhos/v1/device/{device}/activation"), Some(&admin), None, &[]).await.body
        ["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let authorisation = call(&app, "POST", &format!("/dhos/v1/activation/{code}?type=send_entry"), None, None, &[])
        .await
        .body["authorisation_code"]
        .as_str()
        .unwrap()
        .to_owned();
    call(&app, "PATCH", &format!("/dhos/v1/device/{device}"), Some(&admin), Some(json!({"active": false})), &[]).await;
    let r = call(
        &app,
        "GET",
        &format!("/dhos/v1/device/{device}/jwt"),
        None,
        None,
        &[("x-authorisation-code", &authorisation)],
    )
    .await;
    assert_eq!(r.status, 403);

    // An activation code issued while active cannot be completed once the device is inactive.
    call(&app, "PATCH", &format!("/dhos/v1/device/{device}"), Some(&admin), Some(json!({"active": true})), &[]).await;
    let r = call(&app, "POST", &format!("/dhos/v1/device/{device}/activation"), Some(&admin), None, &[]).await;
    let code = r.body["code"].as_str().unwrap().to_owned();
    call(&app, "PATCH", &format!("/dhos/v1/device/{device}"), Some(&admin), Some(json!({"active": false})), &[]).await;
    let r = call(&app, "POST", &format!("/dhos/v1/activation/{code}?type=send_entry"), None, None, &[]).await;
    assert_eq!(r.status, 403);
}
