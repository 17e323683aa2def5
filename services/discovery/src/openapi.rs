//! The service's OpenAPI document.

use crate::{poller, routes, servers, statuses};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(description = "Server discovery, health statuses and the status page. `GET /servers` keeps the Tamanu meta server's field names, which the mobile app reads."),
    paths(
        routes::list_servers, routes::create_server, routes::update_server, routes::delete_server,
        routes::post_status, routes::latest_statuses, routes::server_statuses, routes::reload,
        routes::list_devices, routes::update_device, routes::status_page
    ),
    components(schemas(
        servers::PublicServer, servers::Server, servers::NewServer, servers::ServerChange, servers::ServerId,
        statuses::Status, poller::RoundSummary, routes::RoleChange, meridian_auth::devices::DeviceView,
        meridian_auth::devices::DeviceConnection, crate::model::Rank, crate::model::Kind, meridian_model::DeviceRole
    )),
    tags((name = "servers"), (name = "statuses"), (name = "devices"))
)]
pub struct ApiDoc;
