//! The whole journey through the real App: an administrator sets up a ward device and a clinician;
//! the device logs the clinician in; the clinician activates a patient's app; the patient asks for
//! a call-back; the clinician retrieves, confirms and answers it; the lists change accordingly.

mod common;

use common::{call, ctx, ids};
use serde_json::json;

#[actix_rt::test]
async fn clinician_activates_patient_who_asks_for_a_call_back() {
    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let admin = ctx.system("write:send_device read:send_device write:send_clinician");

    // Set-up: a ward device and a clinician working on that ward.
    let r = call(
        &app,
        "POST",
        "/dhos/v1/device",
        Some(&admin),
        Some(json!({"location_id": "ward-7", "description": "Ward 7"})),
        &[],
    )
    .await;
    let device = r.body["uuid"].as_str().unwrap().to_owned();
    let r = call(
        &app,
        "POST",
        "/dhos/v1/clinician",
        Some(&admin),
        Some(json!({"clinician_id": "nurse-1", "login_active": true, "groups": ["GDM Clinician"], "send_entry_identifier": "7001"})),
        &[],
    )
    .await;
    assert_eq!(r.status, 201);

    // Device -> clinician token chain.
    let code = call(&app, "POST", &format!("/dhos/v1/device/{device}/activation"), Some(&admin), None, &[]).await.body
        ["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = call(&app, "POST", &format!("/dhos/v1/activation/{code}?type=send_entry"), None, None, &[]).await;
    let auth_code = r.body["authorisation_code"].as_str().unwrap().to_owned();
    let r = call(
        &app,
        "GET",
        &format!("/dhos/v1/device/{device}/jwt"),
        None,
        None,
        &[("x-authorisation-code", &auth_code)],
    )
    .await;
    let device_jwt = r.body["jwt"].as_str().unwrap().to_owned();
    let r = call(&app, "GET", "/dhos/v1/clinician/jwt?send_entry_identifier=7001", Some(&device_jwt), None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let nurse = r.body["jwt"].as_str().unwrap().to_owned();

    // The clinician activates the patient's app: PIN for code, code for JWT.
    let r = call(&app, "POST", "/dhos/v1/patient/pat-1/activation", Some(&nurse), None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let (code, pin) = (r.body["activation_code"].as_str().unwrap().to_owned(), r.body["otp"].clone());
    let r = call(&app, "POST", &format!("/dhos/v1/activation/{code}"), None, Some(json!({"otp": pin})), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["patient_id"], "pat-1");
    let auth_code = r.body["authorisation_code"].as_str().unwrap().to_owned();
    let r = call(&app, "GET", "/dhos/v1/patient/pat-1/jwt", None, None, &[("x-authorisation-code", &auth_code)]).await;
    let patient = r.body["jwt"].as_str().unwrap().to_owned();

    // The patient asks the ward for a call-back.
    let r = call(
        &app,
        "POST",
        "/dhos/v2/message",
        Some(&patient),
        Some(json!({"sender": "pat-1", "sender_type": "patient", "receiver": "ward-7", "receiver_type": "location",
            "message_type": {"value": 5}, "content": "Please call me about my readings"})),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let callback = r.body["uuid"].as_str().unwrap().to_owned();

    // The clinician sees it in the ward's open call-backs and active messages.
    let open = "/dhos/v1/receiver/ward-7/active/callback/message";
    let active = "/dhos/v1/receiver/ward-7/active/message";
    assert_eq!(ids(&call(&app, "GET", open, Some(&nurse), None, &[]).await.body), vec![callback.clone()]);
    assert_eq!(ids(&call(&app, "GET", active, Some(&nurse), None, &[]).await.body), vec![callback.clone()]);
    let r = call(&app, "POST", "/dhos/v1/active/callback/message", Some(&nurse), Some(json!(["pat-1"])), &[]).await;
    assert_eq!(r.body["pat-1"]["uuid"], callback.as_str());

    // Retrieve, then confirm (as itself).
    let uri = format!("/dhos/v1/message/{callback}");
    let r = call(&app, "PATCH", &uri, Some(&nurse), Some(json!({"retrieved": "2026-12-01T09:30:00+00:00"})), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(
        &app,
        "PATCH",
        &uri,
        Some(&nurse),
        Some(json!({"confirmed": "2026-12-01T09:31:00+00:00", "confirmed_by": "nurse-1"})),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // The lists change: no longer an open call-back, still active (a confirmed call-back).
    assert!(ids(&call(&app, "GET", open, Some(&nurse), None, &[]).await.body).is_empty());
    assert_eq!(ids(&call(&app, "GET", active, Some(&nurse), None, &[]).await.body), vec![callback.clone()]);
    let r = call(&app, "POST", "/dhos/v1/active/callback/message", Some(&nurse), Some(json!(["pat-1"])), &[]).await;
    assert_eq!(r.body, json!({}));

    // The clinician answers; the patient sees the whole conversation, with the confirmation.
    let r = call(
        &app,
        "POST",
        "/dhos/v2/message",
        Some(&nurse),
        Some(json!({"sender": "nurse-1", "sender_type": "clinician", "receiver": "pat-1", "receiver_type": "patient",
            "message_type": {"value": 0}, "content": "Calling you at 10", "related_message": callback})),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let reply = r.body["uuid"].as_str().unwrap().to_owned();
    let r = call(&app, "GET", "/dhos/v1/sender_or_receiver/pat-1/message", Some(&patient), None, &[]).await;
    assert_eq!(ids(&r.body), vec![reply.clone(), callback.clone()]);
    assert_eq!(r.body[1]["confirmed_by"], "nurse-1");
    assert_eq!(
        ids(&call(&app, "GET", "/dhos/v1/receiver/pat-1/active/message", Some(&patient), None, &[]).await.body),
        vec![reply.clone()]
    );

    // The call-back is done: cancelling it (as the clinician) takes it off the active list.
    let r = call(
        &app,
        "PATCH",
        &uri,
        Some(&nurse),
        Some(json!({"cancelled": "2026-12-01T10:05:00+00:00", "cancelled_by": "nurse-1"})),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(ids(&call(&app, "GET", active, Some(&nurse), None, &[]).await.body).is_empty());

    // The patient's token shows nothing of other patients, and cannot manage activations.
    assert_eq!(
        call(&app, "GET", "/dhos/v1/receiver/ward-7/message", Some(&patient), None, &[])
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(call(&app, "POST", "/dhos/v1/patient/pat-2/activation", Some(&patient), None, &[]).await.status, 403);

    // The service's counters.
    let req = actix_web::test::TestRequest::get().uri("/metrics").to_request();
    let text = String::from_utf8(actix_web::test::call_and_read_body(&app, req).await.to_vec()).unwrap();
    assert!(text.lines().any(|l| l.starts_with("messaging_messages_created_total") && l.ends_with(" 2")), "{text}");
    for kind in ["patient", "device", "clinician"] {
        let line = format!("messaging_logins_total{{kind=\"{kind}\",outcome=\"success\"}}");
        assert!(text.lines().any(|l| l.starts_with(&line)), "{line} missing");
    }
}

#[actix_rt::test]
async fn new_messages_stream_to_their_receiver_across_replicas() {
    use actix_web::body::MessageBody;

    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let nurse = ctx.clinician("nurse-1", &["ward-7"]);
    let patient = ctx.patient("pat-1");

    // Not visible to this caller: 404 before any stream starts.
    let r = call(&app, "GET", "/dhos/v1/receiver/ward-9/message/stream", Some(&nurse), None, &[]).await;
    assert_eq!(r.status, 404);

    let req = actix_web::test::TestRequest::get()
        .uri("/dhos/v1/receiver/ward-7/message/stream")
        .insert_header(("authorization", format!("Bearer {nurse}")))
        .to_request();
    let res = actix_web::test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("content-type").unwrap(), "text/event-stream");
    let mut body = Box::pin(res.into_body());
    let mut next_chunk = async || {
        let chunk = std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await;
        let Some(Ok(bytes)) = chunk else { panic!("the stream ended or failed") };
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    assert!(next_chunk().await.starts_with(": connected"));

    // A second replica on the same database: its messages reach this replica's stream through
    // Postgres NOTIFY. The listener connects in the background: send until one arrives (bounded).
    let other_platform = meridian_platform::testing::test_platform(&messaging::SERVICE, &ctx.db, &[]);
    let other_state = actix_web::web::Data::new(messaging::State::new(&other_platform).unwrap());
    let replica = actix_web::test::init_service(other_platform.app(move |cfg| {
        cfg.app_data(other_state.clone());
        messaging::configure(cfg);
    }))
    .await;
    let mut sent = Vec::new();
    let mut received = None;
    for _ in 0..20 {
        let r = call(
            &replica,
            "POST",
            "/dhos/v2/message",
            Some(&patient),
            Some(
                json!({"sender": "pat-1", "sender_type": "patient", "receiver": "ward-7", "receiver_type": "location",
                "message_type": {"value": 5}, "content": "streamed"}),
            ),
            &[],
        )
        .await;
        sent.push(r.body["uuid"].as_str().unwrap().to_owned());
        if let Ok(chunk) = tokio::time::timeout(std::time::Duration::from_secs(1), next_chunk()).await {
            received = Some(chunk);
            break;
        }
    }
    let event = received.expect("a message event within 20 attempts");
    assert!(event.starts_with("event: message\n"), "{event}");
    let data = event.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let message: serde_json::Value = serde_json::from_str(data).unwrap();
    assert!(sent.contains(&message["uuid"].as_str().unwrap().to_owned()));
    assert_eq!(message["receiver"], "ward-7");
}

#[actix_rt::test]
async fn a_reconnecting_stream_replays_what_it_missed() {
    use actix_web::body::MessageBody;

    let ctx = ctx(&[]);
    let app = ctx.app().await;
    let nurse = ctx.clinician("nurse-1", &["ward-7"]);
    let patient = ctx.patient("pat-1");
    let mut sent = Vec::new();
    for (i, receiver) in ["ward-7", "ward-7", "ward-8", "ward-7"].iter().enumerate() {
        let r = call(
            &app,
            "POST",
            "/dhos/v2/message",
            Some(&patient),
            Some(json!({"sender": "pat-1", "sender_type": "patient", "receiver": receiver,
                "receiver_type": "location", "message_type": {"value": 0}, "content": format!("message {i}")})),
            &[],
        )
        .await;
        sent.push(r.body["uuid"].as_str().unwrap().to_owned());
    }
    // The client last saw the first message: the two later ones to ward-7 come first, in order.
    let req = actix_web::test::TestRequest::get()
        .uri("/dhos/v1/receiver/ward-7/message/stream")
        .insert_header(("authorization", format!("Bearer {nurse}")))
        .insert_header(("last-event-id", sent[0].as_str()))
        .to_request();
    let res = actix_web::test::call_service(&app, req).await;
    assert_eq!(res.status(), 200);
    let mut body = Box::pin(res.into_body());
    let mut chunks = Vec::new();
    for _ in 0..3 {
        let chunk = std::future::poll_fn(|cx| body.as_mut().poll_next(cx)).await;
        let Some(Ok(bytes)) = chunk else { panic!("the stream ended or failed") };
        chunks.push(String::from_utf8(bytes.to_vec()).unwrap());
    }
    assert!(chunks[0].starts_with(": connected"));
    assert!(chunks[1].contains(&format!("id: {}\n", sent[1])), "{}", chunks[1]);
    assert!(chunks[2].contains(&format!("id: {}\n", sent[3])), "{}", chunks[2]);
}
