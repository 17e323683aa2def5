//! The OpenAPI document: every route of this service.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{activations, directory, messages, routes};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(description = "Messages between clinicians, patients, ward devices and locations; one-time activations and \
the JWTs they lead to. Routes and field names follow the Polaris (DHOS) messages and activation-auth APIs their clients use."),
    paths(
        routes::jwks,
        routes::post_message_v2,
        routes::post_message_v1,
        routes::get_message,
        routes::patch_message,
        routes::sender_messages,
        routes::receiver_messages,
        routes::sender_active_messages,
        routes::receiver_active_messages,
        routes::pair_messages,
        routes::pair_active_messages,
        routes::receiver_open_callbacks,
        routes::conversation,
        routes::open_callbacks,
        routes::receiver_stream,
        routes::create_patient_activation,
        routes::list_patient_activations,
        routes::redeem_activation,
        routes::patient_jwt,
        routes::create_device,
        routes::list_devices,
        routes::get_device,
        routes::patch_device,
        routes::create_device_activation,
        routes::device_jwt,
        routes::create_clinician,
        routes::patch_clinician,
        routes::clinician_jwt,
    ),
    components(schemas(
        messages::Message,
        messages::NewMessage,
        messages::MessagePatch,
        messages::MessageType,
        activations::PatientActivation,
        activations::ActivationSummary,
        activations::DeviceActivation,
        routes::OtpBody,
        routes::AuthorisationCode,
        routes::Jwt,
        directory::Device,
        directory::NewDevice,
        directory::DevicePatch,
        directory::Clinician,
        directory::NewClinician,
        directory::ClinicianPatch,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "messages", description = "Messages and their state flow"),
        (name = "activations", description = "Patient app activations"),
        (name = "devices", description = "Ward devices and their activations"),
        (name = "clinicians", description = "Clinicians logging in through ward devices"),
        (name = "tokens", description = "Token verification keys"),
    )
)]
pub struct ApiDoc;
