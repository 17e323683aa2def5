//! The OpenAPI document: every route, with examples. Field names follow Thalamus (its clients
//! need them), not Meridian's snake_case convention where the two differ.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

use crate::routes;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(description = "The people hub of a health federation, compatible with GNU Health Thalamus clients. \
        Every call uses HTTP basic authentication with the federation id as the login. Record fields keep \
        Thalamus's names (id, name, lastname, gender, dob, roles, active, ...); unknown fields are kept."),
    paths(
        routes::login,
        routes::people_list, routes::person_get, routes::person_post, routes::person_patch, routes::person_delete,
        routes::person_audit,
        routes::pols_list, routes::pol_get, routes::pol_post, routes::pol_patch, routes::pol_delete,
        routes::docs_list, routes::docs_post, routes::doc_get, routes::doc_post,
        crate::password_form::show, crate::password_form::change,
        routes::places_list, routes::places_post, routes::place_get, routes::place_post, routes::place_patch,
    ),
    modifiers(&BasicAuth),
    tags((name = "federation", description = "People, pages of life, documents, domiciliary units, institutions"))
)]
pub struct ApiDoc;

struct BasicAuth;

impl utoipa::Modify for BasicAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("basic", SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)));
        // Institutions share the domiciliary units' handlers and shapes.
        for (from, to) in [("/domiciliary-units", "/institutions"), ("/domiciliary-units/{id}", "/institutions/{id}")] {
            if let Some(item) = openapi.paths.paths.get(from).cloned() {
                openapi.paths.paths.insert(to.to_owned(), item);
            }
        }
    }
}
