//! The OpenAPI document of the versions service.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};

use crate::model::{Artifact, VersionDetail, VersionView};
use crate::routes;

struct ClientCertificate;

impl utoipa::Modify for ClientCertificate {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "client_certificate",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "mtls-certificate",
                "The device's client certificate: mutual TLS, or PEM (URL-encoded) in this header from the \
                 trusted proxy. Publishing needs the releaser role, withdrawing the admin role.",
            ))),
        );
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(description = "Released versions, their artifacts, and which updates a server should take. \
        Field names of versions and artifacts are those of the Tamanu meta server, whose clients read them."),
    paths(
        routes::list_versions,
        routes::latest,
        routes::update_for,
        routes::publish,
        routes::withdraw,
        routes::show_version,
        routes::list_artifacts,
        routes::mobile,
        routes::index,
        routes::add_artifact,
    ),
    components(schemas(VersionView, VersionDetail, Artifact, routes::ArtifactBody)),
    modifiers(&ClientCertificate),
    tags(
        (name = "versions", description = "Versions and the update rule"),
        (name = "artifacts", description = "Downloadable builds"),
        (name = "pages", description = "HTML pages for people"),
    )
)]
pub struct ApiDoc;
