//! The service's OpenAPI document.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::broadcasts::BroadcastStatus;
use crate::routes;
use crate::usage::InstallCount;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("pin", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Secret-Pin"))));
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// Field names keep the replaced service's camelCase (`productId`, `secretPin`), which its clients
/// read; the endpoints added here follow the same style so one service speaks one dialect.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(description = "Product registration, broadcast email through a durable queue, one-click opt-out, usage reports."),
    paths(
        routes::up,
        routes::register,
        routes::unique,
        routes::broadcast,
        routes::broadcast_list,
        routes::broadcast_status,
        routes::unsubscribe_page,
        routes::unsubscribe,
        routes::usage_report,
        routes::usage_summary,
    ),
    components(schemas(
        routes::Up,
        routes::RegistrationRequest,
        routes::ProductId,
        routes::Count,
        routes::BroadcastRequest,
        routes::BroadcastQueued,
        routes::BroadcastPreview,
        routes::UsageStored,
        routes::UsageSummary,
        BroadcastStatus,
        InstallCount,
    )),
    modifiers(&Security)
)]
pub struct ApiDoc;
