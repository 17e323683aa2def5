//! Messages: validation, visibility, the state flow, the lists and idempotency.

mod common;

use common::{call, ctx, ids, message};
use serde_json::json;

#[actix_rt::test]
async fn create_validates_and_answers_the_polaris_shape() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let p1 = ctx.patient("p1");

    let r =
        call(&app, "POST", "/dhos/v2/message", Some(&p1), Some(message("p1", "patient", "ward-1", "location", 5)), &[])
            .await;
    assert_eq!(r.status, 200, "{}", r.body);
    for field in ["uuid", "created", "modified", "retrieved", "confirmed", "confirmed_by", "cancelled", "cancelled_by"]
    {
        assert!(r.body.get(field).is_some(), "{field} missing");
    }
    assert_eq!(r.body["message_type"], json!({"value": 5}));
    assert_eq!(r.body["sender_type"], "patient");
    assert!(r.body["confirmed"].is_null());
    assert!(r.headers.get("deprecation").is_none());

    // Unknown keys, missing fields, malformed JSON: 400.
    let mut extra = message("p1", "patient", "c1", "clinician", 0);
    extra["colour"] = json!("red");
    let r = call(&app, "POST", "/dhos/v2/message", Some(&p1), Some(extra), &[]).await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"].as_str().unwrap().contains("colour"));
    let mut missing = message("p1", "patient", "c1", "clinician", 0);
    missing.as_object_mut().unwrap().remove("content");
    assert_eq!(call(&app, "POST", "/dhos/v2/message", Some(&p1), Some(missing), &[]).await.status, 400);
    let mut nested = message("p1", "patient", "c1", "clinician", 0);
    nested["message_type"] = json!({"value": 1, "sct_code": "x"});
    assert_eq!(call(&app, "POST", "/dhos/v2/message", Some(&p1), Some(nested), &[]).await.status, 400);
    // A value of the wrong type is named by its path.
    let mut mistyped = message("p1", "patient", "c1", "clinician", 0);
    mistyped["message_type"] = json!({"value": "five"});
    let r = call(&app, "POST", "/dhos/v2/message", Some(&p1), Some(mistyped), &[]).await;
    assert_eq!(r.status, 400);
    assert!(r.body["errors"]["message_type.value"].is_array(), "{}", r.body);

    // Empty values, type 4, unknown party types: 422 naming the fields.
    let mut empty = message("p1", "patient", "", "ward", 4);
    empty["content"] = json!(" ");
    let r = call(&app, "POST", "/dhos/v2/message", Some(&p1), Some(empty), &[]).await;
    assert_eq!(r.status, 422);
    for field in ["receiver", "receiver_type", "message_type", "content"] {
        assert!(r.body["errors"].get(field).is_some(), "{field} not named: {}", r.body);
    }
    for kind in [0, 1, 2, 3, 5, 6, 7, 8, 9, 10] {
        let r = call(
            &app,
            "POST",
            "/dhos/v2/message",
            Some(&p1),
            Some(message("p1", "patient", "c1", "clinician", kind)),
            &[],
        )
        .await;
        assert_eq!(r.status, 200, "type {kind}");
    }
    assert_eq!(
        call(&app, "POST", "/dhos/v2/message", Some(&p1), Some(message("p1", "patient", "c1", "clinician", 11)), &[])
            .await
            .status,
        422
    );

    // related_message must exist (and be visible).
    let mut related = message("p1", "patient", "c1", "clinician", 0);
    related["related_message"] = json!(uuid::Uuid::new_v4());
    let r = call(&app, "POST", "/dhos/v2/message", Some(&p1), Some(related), &[]).await;
    assert_eq!(r.status, 422);
    assert!(r.body["errors"]["related_message"].is_array());

    // A patient cannot send as someone else.
    let r =
        call(&app, "POST", "/dhos/v2/message", Some(&p1), Some(message("p2", "patient", "c1", "clinician", 0)), &[])
            .await;
    assert_eq!(r.status, 403);
}

#[actix_rt::test]
async fn v1_post_is_deprecated_with_a_successor_link() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let r = call(
        &app,
        "POST",
        "/dhos/v1/message",
        Some(&ctx.clinician("c1", &[])),
        Some(message("c1", "clinician", "p1", "patient", 1)),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers.get("deprecation").unwrap(), "true");
    assert_eq!(r.headers.get("link").unwrap(), "</dhos/v2/message>; rel=\"successor-version\"");
}

async fn send<S, B>(app: &S, token: &str, body: serde_json::Value) -> String
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let r = call(app, "POST", "/dhos/v2/message", Some(token), Some(body), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["uuid"].as_str().unwrap().to_owned()
}

#[actix_rt::test]
async fn visibility_patients_clinicians_locations_devices_systems() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let system = ctx.system("read:gdm_message write:gdm_message");
    let to_p1 = send(&app, &system, message("c9", "clinician", "p1", "patient", 1)).await;
    let to_ward = send(&app, &system, message("p2", "patient", "ward-1", "location", 5)).await;
    let between_others = send(&app, &system, message("c8", "clinician", "p3", "patient", 0)).await;

    let p1 = ctx.patient("p1");
    assert_eq!(call(&app, "GET", &format!("/dhos/v1/message/{to_p1}"), Some(&p1), None, &[]).await.status, 200);
    let r = call(&app, "GET", &format!("/dhos/v1/message/{to_ward}"), Some(&p1), None, &[]).await;
    assert_eq!(r.status, 404, "not visible is 404, like not existing");
    let r = call(&app, "GET", &format!("/dhos/v1/message/{}", uuid::Uuid::new_v4()), Some(&p1), None, &[]).await;
    assert_eq!(r.status, 404);

    let clinician_on_ward = ctx.clinician("c1", &["ward-1"]);
    for (id, status) in [(&to_ward, 200), (&to_p1, 404), (&between_others, 404)] {
        let r = call(&app, "GET", &format!("/dhos/v1/message/{id}"), Some(&clinician_on_ward), None, &[]).await;
        assert_eq!(r.status, status);
    }
    let device = ctx.device("d1", "ward-1");
    assert_eq!(call(&app, "GET", &format!("/dhos/v1/message/{to_ward}"), Some(&device), None, &[]).await.status, 200);
    assert_eq!(call(&app, "GET", &format!("/dhos/v1/message/{to_p1}"), Some(&device), None, &[]).await.status, 404);

    // Lists are filtered the same way; system tokens and *_all scopes see everything.
    let r = call(&app, "GET", "/dhos/v1/receiver/p3/message", Some(&clinician_on_ward), None, &[]).await;
    assert_eq!(r.body, json!([]));
    let r = call(&app, "GET", "/dhos/v1/receiver/p3/message", Some(&system), None, &[]).await;
    assert_eq!(ids(&r.body), vec![between_others.clone()]);
    let all = ctx.system("read:gdm_message_all");
    assert_eq!(ids(&call(&app, "GET", "/dhos/v1/sender/c8/message", Some(&all), None, &[]).await.body).len(), 1);
    // A location header cannot widen what a token sees.
    let r =
        call(&app, "GET", "/dhos/v1/receiver/p3/message", Some(&p1), None, &[("x-location-ids", "ward-1,p3")]).await;
    assert_eq!(r.body, json!([]));
}

#[actix_rt::test]
async fn state_flow_is_enforced_with_409() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let c1 = ctx.clinician("c1", &["ward-1"]);
    let p1 = ctx.patient("p1");
    let general = send(&app, &c1, message("c1", "clinician", "p1", "patient", 0)).await;
    let callback = send(&app, &p1, message("p1", "patient", "ward-1", "location", 5)).await;
    let uri = |id: &str| format!("/dhos/v1/message/{id}");

    // Only the listed fields; nothing at all is refused too.
    for body in [json!({"content": "changed"}), json!({"sender": "x"}), json!({})] {
        assert_eq!(call(&app, "PATCH", &uri(&general), Some(&p1), Some(body), &[]).await.status, 400);
    }
    assert_eq!(
        call(&app, "PATCH", &uri(&general), Some(&p1), Some(json!({"retrieved": "soon"})), &[]).await.status,
        400
    );

    // retrieved: set once, the offset kept as sent; the same instant again is harmless; another moves it: 409.
    let r = call(
        &app,
        "PATCH",
        &uri(&general),
        Some(&p1),
        Some(json!({"retrieved": "2026-12-01T10:00:00.000+01:00"})),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["retrieved"], "2026-12-01T10:00:00.000+01:00");
    let r =
        call(&app, "PATCH", &uri(&general), Some(&p1), Some(json!({"retrieved": "2026-12-01T09:00:00Z"})), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["retrieved"], "2026-12-01T10:00:00.000+01:00");
    let r =
        call(&app, "PATCH", &uri(&general), Some(&p1), Some(json!({"retrieved": "2026-12-01T11:00:00+01:00"})), &[])
            .await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body["code"], "InvalidStateChange");

    // confirm needs confirmed_by equal to the caller.
    let at = "2026-12-01T10:05:00-05:00";
    assert_eq!(call(&app, "PATCH", &uri(&general), Some(&p1), Some(json!({"confirmed": at})), &[]).await.status, 409);
    let r =
        call(&app, "PATCH", &uri(&general), Some(&p1), Some(json!({"confirmed": at, "confirmed_by": "p2"})), &[]).await;
    assert_eq!(r.status, 409);
    assert_eq!(
        call(&app, "PATCH", &uri(&general), Some(&p1), Some(json!({"confirmed_by": "p1"})), &[]).await.status,
        409
    );
    let r =
        call(&app, "PATCH", &uri(&general), Some(&p1), Some(json!({"confirmed": at, "confirmed_by": "p1"})), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["confirmed"], at);
    assert_eq!(r.body["confirmed_by"], "p1");
    let r = call(
        &app,
        "PATCH",
        &uri(&general),
        Some(&p1),
        Some(json!({"confirmed": "2026-12-02T10:05:00Z", "confirmed_by": "p1"})),
        &[],
    )
    .await;
    assert_eq!(r.status, 409, "confirmed never moves");

    // Only call-backs can be cancelled.
    let r =
        call(&app, "PATCH", &uri(&general), Some(&p1), Some(json!({"cancelled": at, "cancelled_by": "p1"})), &[]).await;
    assert_eq!(r.status, 409);

    // A cancelled call-back cannot be confirmed.
    let r = call(&app, "PATCH", &uri(&callback), Some(&c1), Some(json!({"cancelled": at, "cancelled_by": "c2"})), &[])
        .await;
    assert_eq!(r.status, 409, "cancelled_by must be the caller");
    let r = call(&app, "PATCH", &uri(&callback), Some(&c1), Some(json!({"cancelled": at, "cancelled_by": "c1"})), &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["cancelled_by"], "c1");
    let r = call(&app, "PATCH", &uri(&callback), Some(&c1), Some(json!({"confirmed": at, "confirmed_by": "c1"})), &[])
        .await;
    assert_eq!(r.status, 409);
    assert!(r.body["detail"].as_str().unwrap().contains("cancelled"));

    // related_message: not itself, must exist, set once.
    let r = call(&app, "PATCH", &uri(&callback), Some(&c1), Some(json!({"related_message": callback})), &[]).await;
    assert_eq!(r.status, 422);
    let r =
        call(&app, "PATCH", &uri(&callback), Some(&c1), Some(json!({"related_message": uuid::Uuid::new_v4()})), &[])
            .await;
    assert_eq!(r.status, 422);
    let reply = send(&app, &c1, message("c1", "clinician", "p1", "patient", 0)).await;
    let r = call(&app, "PATCH", &uri(&reply), Some(&c1), Some(json!({"related_message": callback})), &[]).await;
    assert_eq!(r.status, 200);
    let r = call(&app, "PATCH", &uri(&reply), Some(&c1), Some(json!({"related_message": general})), &[]).await;
    assert_eq!(r.status, 409);

    // Someone who cannot see the message gets 404.
    let stranger = ctx.patient("p9");
    let r = call(&app, "PATCH", &uri(&general), Some(&stranger), Some(json!({"retrieved": at})), &[]).await;
    assert_eq!(r.status, 404);

    // The lists (written straight from their rows) show every message exactly as a GET of it
    // does, awkward text included.
    let mut awkward = message("c1", "clinician", "p1", "patient", 1);
    awkward["content"] = json!("Take \"two\" 5\u{a0}mg\n\tC:\\doses\\ \u{1} ünï 日本 🩺 </script>");
    let awkward = send(&app, &c1, awkward).await;
    let listed = call(&app, "GET", "/dhos/v1/sender_or_receiver/p1/message", Some(&c1), None, &[]).await;
    assert_eq!(listed.status, 200);
    for id in [&general, &callback, &reply, &awkward] {
        let one = call(&app, "GET", &uri(id), Some(&c1), None, &[]).await;
        let item = listed.body.as_array().unwrap().iter().find(|m| m["uuid"] == id.as_str()).expect("listed");
        assert_eq!(item, &one.body);
    }
}

#[actix_rt::test]
async fn lists_filter_order_and_paginate() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let system = ctx.system("read:gdm_message write:gdm_message");
    let a = send(&app, &system, message("p1", "patient", "ward-1", "location", 5)).await;
    let b = send(&app, &system, message("p1", "patient", "ward-2", "location", 0)).await;
    let c = send(&app, &system, message("p2", "patient", "ward-1", "location", 0)).await;
    let d = send(&app, &system, message("ward-1", "location", "p1", "patient", 7)).await;
    let e = send(&app, &system, message("p1", "patient", "ward-1", "location", 1)).await;

    let get = |uri: &'static str| call(&app, "GET", uri, Some(&system), None, &[]);
    assert_eq!(ids(&get("/dhos/v1/sender/p1/message").await.body), vec![e.clone(), b.clone(), a.clone()]);
    assert_eq!(ids(&get("/dhos/v1/receiver/ward-1/message").await.body), vec![e.clone(), c.clone(), a.clone()]);
    assert_eq!(ids(&get("/dhos/v1/sender/p1/receiver/ward-1/message").await.body), vec![e.clone(), a.clone()]);

    // Confirm e (a dosage message) and a (a call-back): e leaves the active lists, a stays.
    let at = "2026-12-01T12:00:00Z";
    let p = |id: &str| format!("/dhos/v1/message/{id}");
    let body = json!({"confirmed": at, "confirmed_by": "test-system"});
    assert_eq!(call(&app, "PATCH", &p(&e), Some(&system), Some(body.clone()), &[]).await.status, 200);
    assert_eq!(call(&app, "PATCH", &p(&a), Some(&system), Some(body), &[]).await.status, 200);
    assert_eq!(ids(&get("/dhos/v1/receiver/ward-1/active/message").await.body), vec![c.clone(), a.clone()]);
    assert_eq!(ids(&get("/dhos/v1/sender/p1/active/message").await.body), vec![b.clone(), a.clone()]);
    // Both parties filter (the reference returned every unconfirmed message).
    assert_eq!(ids(&get("/dhos/v1/sender/p1/receiver/ward-1/active/message").await.body), vec![a.clone()]);
    assert_eq!(ids(&get("/dhos/v1/sender/p2/receiver/ward-2/active/message").await.body), Vec::<String>::new());
    // Open call-backs: a confirmed call-back is active but no longer open.
    assert_eq!(ids(&get("/dhos/v1/receiver/ward-1/active/callback/message").await.body), Vec::<String>::new());
    let open = send(&app, &system, message("p2", "patient", "ward-1", "location", 5)).await;
    assert_eq!(ids(&get("/dhos/v1/receiver/ward-1/active/callback/message").await.body), vec![open.clone()]);

    // The whole conversation; a patient caller does not see alerts.
    assert_eq!(
        ids(&get("/dhos/v1/sender_or_receiver/p1/message").await.body),
        vec![e.clone(), d.clone(), b.clone(), a.clone()]
    );
    let p1 = ctx.patient("p1");
    let r = call(&app, "GET", "/dhos/v1/sender_or_receiver/p1/message", Some(&p1), None, &[]).await;
    assert_eq!(ids(&r.body), vec![e.clone(), b.clone(), a.clone()]);

    // Pagination: newest first, a Link to the next page.
    let r = get("/dhos/v1/sender_or_receiver/p1/message?limit=3").await;
    assert_eq!(ids(&r.body), vec![e.clone(), d.clone(), b.clone()]);
    assert_eq!(r.headers.get("x-next-offset").unwrap(), "3");
    assert!(r.headers.get("link").unwrap().to_str().unwrap().contains("offset=3"));
    let r = get("/dhos/v1/sender_or_receiver/p1/message?limit=3&offset=3").await;
    assert_eq!(ids(&r.body), vec![a.clone()]);
    assert!(r.headers.get("x-next-offset").is_none());

    // Open call-backs by patient.
    let r = call(&app, "POST", "/dhos/v1/active/callback/message", Some(&system), Some(json!(["p1", "p2", "p3"])), &[])
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.as_object().unwrap().len(), 1, "{}", r.body);
    assert_eq!(r.body["p2"]["uuid"], open.as_str());
    let r = call(&app, "POST", "/dhos/v1/active/callback/message", Some(&p1), Some(json!(["p2"])), &[]).await;
    assert_eq!(r.body, json!({}), "a patient sees only its own");
}

#[actix_rt::test]
async fn idempotency_key_replays_the_first_result() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let p1 = ctx.patient("p1");
    let body = message("p1", "patient", "ward-1", "location", 5);
    let key = [("idempotency-key", "retry-42")];
    let first = call(&app, "POST", "/dhos/v2/message", Some(&p1), Some(body.clone()), &key).await;
    let second = call(&app, "POST", "/dhos/v2/message", Some(&p1), Some(body.clone()), &key).await;
    assert_eq!(first.status, 200);
    assert_eq!(second.status, 200);
    assert_eq!(first.body["uuid"], second.body["uuid"]);
    assert_eq!(second.headers.get("idempotent-replayed").unwrap(), "true");
    let system = ctx.system("read:gdm_message");
    let r = call(&app, "GET", "/dhos/v1/sender/p1/message", Some(&system), None, &[]).await;
    assert_eq!(ids(&r.body).len(), 1, "no duplicate");
    // The same key with another body is refused; another caller's key space is separate.
    let mut other = body.clone();
    other["content"] = json!("something else");
    assert_eq!(call(&app, "POST", "/dhos/v2/message", Some(&p1), Some(other), &key).await.status, 422);
    let p2 = ctx.patient("p2");
    let r = call(&app, "POST", "/dhos/v2/message", Some(&p2), Some(message("p2", "patient", "w", "location", 0)), &key)
        .await;
    assert_eq!(r.status, 200);
    assert_ne!(r.body["uuid"], first.body["uuid"]);

    // After the retention period the key is forgotten: the same request makes a new message.
    {
        use diesel::RunQueryDsl;
        diesel::sql_query("UPDATE idempotency_keys SET created = now() - interval '25 hours'")
            .execute(&mut ctx.db.conn())
            .unwrap();
    }
    let third = call(&app, "POST", "/dhos/v2/message", Some(&p1), Some(body.clone()), &key).await;
    assert_eq!(third.status, 200);
    assert_ne!(third.body["uuid"], first.body["uuid"]);
    let fourth = call(&app, "POST", "/dhos/v2/message", Some(&p1), Some(body), &key).await;
    assert_eq!(fourth.body["uuid"], third.body["uuid"], "remembered again");
}

#[actix_rt::test]
async fn concurrent_confirmations_one_wins_the_other_conflicts() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let c1 = ctx.clinician("c1", &["ward-1"]);
    for round in 0..5 {
        let id = send(&app, &c1, message("c1", "clinician", "ward-1", "location", 1)).await;
        let uri = format!("/dhos/v1/message/{id}");
        let first = call(
            &app,
            "PATCH",
            &uri,
            Some(&c1),
            Some(json!({"confirmed": "2026-12-01T10:00:00Z", "confirmed_by": "c1"})),
            &[],
        );
        let second = call(
            &app,
            "PATCH",
            &uri,
            Some(&c1),
            Some(json!({"confirmed": "2026-12-01T11:00:00Z", "confirmed_by": "c1"})),
            &[],
        );
        let (a, b) = futures_util::future::join(first, second).await;
        let mut statuses = [a.status, b.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "round {round}");
        let stored = call(&app, "GET", &uri, Some(&c1), None, &[]).await;
        let winner = if a.status == 200 { &a } else { &b };
        assert_eq!(stored.body["confirmed"], winner.body["confirmed"]);
    }
}

/// Lists answer the JSON stored with each message. The service writes it with serde; rows written
/// in SQL get it from the database's `message_json`. Both must be what a GET answers.
#[actix_rt::test]
async fn stored_json_is_what_a_get_answers_however_the_row_was_written() {
    use diesel::RunQueryDsl;
    use diesel::sql_types::{BigInt, Text};

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let system = ctx.system("read:gdm_message write:gdm_message");
    let c1 = ctx.clinician("c1", &["ward-1"]);
    // (as stored, as answered): no fraction, milliseconds, microseconds, another offset before 2000.
    let instants = [
        ("2026-12-01T09:00:00Z", "2026-12-01T09:00:00Z"),
        ("2026-12-01T09:00:00.120Z", "2026-12-01T09:00:00.120Z"),
        ("2026-12-01T09:00:00.000001Z", "2026-12-01T09:00:00.000001Z"),
        ("1999-12-31T23:59:59.999999+05:30", "1999-12-31T18:29:59.999999Z"),
    ];
    let mut sent = Vec::new();
    for (n, _) in instants.iter().enumerate() {
        let mut body = message("p1", "patient", "ward-1", "location", 5);
        body["content"] = json!(format!("{n}: Take \"two\" 5\u{a0}mg\n\tC:\\doses\\ \u{1} ünï 日本 🩺 </script>"));
        sent.push(send(&app, &system, body).await);
    }
    // Every optional field set on one of them.
    let uri = format!("/dhos/v1/message/{}", sent[0]);
    let at = "2026-12-01T10:15:00.000+01:00";
    let patch = json!({"retrieved": at, "confirmed": at, "confirmed_by": "c1", "related_message": sent[1]});
    assert_eq!(call(&app, "PATCH", &uri, Some(&c1), Some(patch), &[]).await.status, 200);

    // What the service stored is what the database renders for the same row.
    let mut conn = ctx.platform.db.pool().get().unwrap();
    let differing = diesel::sql_query(
        "SELECT count(*) AS n FROM messages WHERE json IS DISTINCT FROM message_json(uuid, created, modified, \
         created_by, sender, sender_type, receiver, receiver_type, message_type, content, related_message, \
         retrieved_text, confirmed_text, confirmed_by, cancelled_text, cancelled_by)",
    )
    .get_result::<Count>(&mut conn)
    .unwrap();
    assert_eq!(differing.n, 0);

    // Rows changed in SQL without `json` (the service stamps the current time; these instants are
    // written straight into the table) are rendered again by the database.
    for (id, (stored, _)) in sent.iter().zip(instants) {
        diesel::sql_query(
            "UPDATE messages SET created = $1::timestamptz, modified = $1::timestamptz WHERE uuid = $2::uuid",
        )
        .bind::<Text, _>(stored)
        .bind::<Text, _>(id)
        .execute(&mut conn)
        .unwrap();
    }
    let listed = call(&app, "GET", "/dhos/v1/receiver/ward-1/message", Some(&system), None, &[]).await;
    assert_eq!(listed.status, 200);
    for (id, (_, answered)) in sent.iter().zip(instants) {
        let one = call(&app, "GET", &format!("/dhos/v1/message/{id}"), Some(&system), None, &[]).await;
        let item = listed.body.as_array().unwrap().iter().find(|m| m["uuid"] == id.as_str()).expect("listed");
        assert_eq!(item, &one.body);
        assert_eq!(item["created"], answered);
        assert_eq!(item["modified"], answered);
    }
}

/// The table's own rules stand behind the service's validation, whatever writes to it.
#[actix_rt::test]
async fn the_database_refuses_messages_the_api_refuses() {
    use diesel::RunQueryDsl;

    let ctx = ctx(&[]);
    let mut conn = ctx.platform.db.pool().get().unwrap();
    let insert = |sender: &str, sender_type: &str, message_type: i32, content: &str| {
        format!(
            "INSERT INTO messages (uuid, created, modified, created_by, sender, sender_type, receiver, receiver_type, \
             message_type, content) VALUES (gen_random_uuid(), now(), now(), 'test', '{sender}', '{sender_type}', \
             'ward-1', 'location', {message_type}, '{content}')"
        )
    };
    assert!(diesel::sql_query(insert("p1", "patient", 0, "fine")).execute(&mut conn).is_ok());
    for (sender, sender_type, message_type, content) in
        [("", "patient", 0, "x"), ("p1", "ward", 0, "x"), ("p1", "patient", 4, "x"), ("p1", "patient", 0, "")]
    {
        let refused = diesel::sql_query(insert(sender, sender_type, message_type, content)).execute(&mut conn);
        assert!(refused.is_err(), "{sender:?} {sender_type:?} {message_type} {content:?} was stored");
    }
}

/// Concurrent POSTs are stored together (crate::inserts batches them); each sender gets its own
/// message back, every one is stored once, and each answer is what a GET of it gives.
#[actix_rt::test]
async fn concurrent_posts_each_get_their_own_stored_message() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let system = ctx.system("read:gdm_message write:gdm_message");
    let posts = (0..40).map(|n| {
        let mut body = message(&format!("p{n}"), "patient", "ward-9", "location", n % 4);
        body["content"] = json!(format!("message number {n}"));
        call(&app, "POST", "/dhos/v2/message", Some(&system), Some(body), &[])
    });
    let replies = futures_util::future::join_all(posts).await;
    let mut seen = std::collections::HashSet::new();
    for (n, reply) in replies.iter().enumerate() {
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["sender"], format!("p{n}"));
        assert_eq!(reply.body["content"], format!("message number {n}"));
        assert!(seen.insert(reply.body["uuid"].as_str().unwrap().to_owned()), "one id answered twice");
        let uri = format!("/dhos/v1/message/{}", reply.body["uuid"].as_str().unwrap());
        assert_eq!(call(&app, "GET", &uri, Some(&system), None, &[]).await.body, reply.body);
    }
    let listed = call(&app, "GET", "/dhos/v1/receiver/ward-9/message?limit=100", Some(&system), None, &[]).await;
    assert_eq!(ids(&listed.body).len(), 40);
}

/// A message the database refuses fails alone: the others sent with it are stored.
#[actix_rt::test]
async fn a_refused_message_does_not_take_the_others_with_it() {
    let ctx = ctx(&[]);
    let claims = ctx.state.keys.verify(&ctx.system("write:gdm_message")).unwrap();
    let system = messaging::auth::Caller::from_claims(claims).unwrap();
    let rows = (0..8).map(|n| {
        let body = serde_json::from_value(message("p1", "patient", "ward-1", "location", 0)).unwrap();
        let mut row = messaging::messages::new_row(&system, body).unwrap();
        if n == 3 {
            // Past the service's validation, only the table's rules can refuse it.
            row.message_type = 4;
        }
        row
    });
    let results = futures_util::future::join_all(rows.map(|row| ctx.state.inserts.insert(row))).await;
    for (n, result) in results.iter().enumerate() {
        assert_eq!(result.is_err(), n == 3, "message {n}: {:?}", result.as_ref().err());
    }
    let app = ctx.app().await;
    let token = ctx.system("read:gdm_message");
    let listed = call(&app, "GET", "/dhos/v1/receiver/ward-1/message", Some(&token), None, &[]).await;
    assert_eq!(ids(&listed.body).len(), 7);
}

/// A conversation merges what a party sent with what it received; paging through it in small
/// pages gives every message once, in order, a message to itself included.
#[actix_rt::test]
async fn a_conversation_pages_through_sent_and_received_messages_once_each() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let system = ctx.system("read:gdm_message write:gdm_message");
    let mut sent = Vec::new();
    for n in 0..9 {
        let body = match n % 3 {
            0 => message("p1", "patient", "ward-1", "location", 0),
            1 => message("c1", "clinician", "p1", "patient", 1),
            _ => message("p1", "patient", "p1", "patient", 2),
        };
        sent.push(send(&app, &system, body).await);
    }
    send(&app, &system, message("p2", "patient", "ward-1", "location", 0)).await;
    sent.reverse();
    let all = call(&app, "GET", "/dhos/v1/sender_or_receiver/p1/message", Some(&system), None, &[]).await;
    assert_eq!(ids(&all.body), sent);
    let mut paged = Vec::new();
    for offset in (0..10).step_by(2) {
        let uri = format!("/dhos/v1/sender_or_receiver/p1/message?limit=2&offset={offset}");
        paged.extend(ids(&call(&app, "GET", &uri, Some(&system), None, &[]).await.body));
    }
    assert_eq!(paged, sent);
}
