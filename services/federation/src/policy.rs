//! The access policy: which role may use which method on which resource, and whether on anyone's
//! records (`global`) or only on the caller's own (`own`). The same idea as Thalamus's `roles.cfg`,
//! in JSON, loaded from `FEDERATION_ROLES_FILE` or the built-in default below.
//!
//! ```json
//! {
//!   "end_user": [
//!     {"resources": ["people"], "methods": ["GET", "PATCH"], "scope": "own"}
//!   ],
//!   "root": [{"resources": ["*"], "methods": ["*"], "scope": "global"}]
//! }
//! ```
//! A caller's access is the widest any of their roles grants. `HEAD` counts as `GET`. Roles not
//! named in the policy grant nothing, and cannot be assigned to a person.

use std::collections::BTreeMap;

use actix_web::http::Method;
use serde::Deserialize;

/// What a request touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    People,
    Pols,
    PersonalDocs,
    DomiciliaryUnits,
    Institutions,
    Audit,
}

impl Resource {
    pub const ALL: [Resource; 6] =
        [Self::People, Self::Pols, Self::PersonalDocs, Self::DomiciliaryUnits, Self::Institutions, Self::Audit];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::People => "people",
            Self::Pols => "pols",
            Self::PersonalDocs => "personal_docs",
            Self::DomiciliaryUnits => "domiciliary_units",
            Self::Institutions => "institutions",
            Self::Audit => "audit",
        }
    }
}

/// How far a grant reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Only records of the caller (their person record, their book, their documents).
    Own,
    /// Everyone's records.
    Global,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub resources: Vec<String>,
    pub methods: Vec<String>,
    pub scope: Scope,
}

const METHODS: [&str; 5] = ["GET", "POST", "PATCH", "DELETE", "*"];

#[derive(Debug, Clone)]
pub struct Policy {
    roles: BTreeMap<String, Vec<Rule>>,
}

/// The built-in default: end users see and edit their own record (never its roles), keep their own
/// book and documents; health professionals work on everyone's records but delete nothing; root
/// does everything, and alone reads the audit trail and deletes people.
pub const DEFAULT_POLICY: &str = r#"{
  "end_user": [
    {"resources": ["people"], "methods": ["GET", "PATCH"], "scope": "own"},
    {"resources": ["pols"], "methods": ["GET", "POST", "PATCH", "DELETE"], "scope": "own"},
    {"resources": ["personal_docs"], "methods": ["GET", "POST"], "scope": "own"},
    {"resources": ["domiciliary_units", "institutions"], "methods": ["GET"], "scope": "global"}
  ],
  "health_professional": [
    {"resources": ["people"], "methods": ["GET", "POST", "PATCH"], "scope": "global"},
    {"resources": ["pols"], "methods": ["GET", "POST", "PATCH"], "scope": "global"},
    {"resources": ["personal_docs"], "methods": ["GET", "POST"], "scope": "global"},
    {"resources": ["domiciliary_units", "institutions"], "methods": ["GET", "POST", "PATCH"], "scope": "global"}
  ],
  "root": [
    {"resources": ["*"], "methods": ["*"], "scope": "global"}
  ]
}"#;

impl Policy {
    /// Parses and checks a policy document: unknown resources or methods are refused, so a typo
    /// cannot silently grant or deny.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let roles: BTreeMap<String, Vec<Rule>> =
            serde_json::from_str(text).map_err(|e| format!("the roles policy is not valid: {e}"))?;
        for (role, rules) in &roles {
            if role.is_empty() || !role.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                return Err(format!("role {role:?}: use lower-case letters and underscores"));
            }
            for rule in rules {
                for resource in &rule.resources {
                    if resource != "*" && !Resource::ALL.iter().any(|r| r.as_str() == resource) {
                        return Err(format!("role {role}: unknown resource {resource:?}"));
                    }
                }
                for method in &rule.methods {
                    if !METHODS.contains(&method.as_str()) {
                        return Err(format!("role {role}: unknown method {method:?} (GET, POST, PATCH, DELETE or *)"));
                    }
                }
            }
        }
        if !roles.contains_key("root") {
            return Err("the policy must define the root role".to_owned());
        }
        Ok(Policy { roles })
    }

    pub fn builtin() -> Policy {
        Policy::parse(DEFAULT_POLICY).expect("the built-in policy is valid")
    }

    pub fn is_role(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    /// The widest scope `roles` grant for `method` on `resource`, if any.
    pub fn access(&self, roles: &[String], resource: Resource, method: &Method) -> Option<Scope> {
        let method = if *method == Method::HEAD { "GET" } else { method.as_str() };
        roles
            .iter()
            .filter_map(|role| self.roles.get(role))
            .flatten()
            .filter(|rule| rule.resources.iter().any(|r| r == "*" || r == resource.as_str()))
            .filter(|rule| rule.methods.iter().any(|m| m == "*" || m == method))
            .map(|rule| rule.scope)
            .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn builtin_grants() {
        let p = Policy::builtin();
        assert_eq!(p.access(&roles(&["end_user"]), Resource::People, &Method::GET), Some(Scope::Own));
        assert_eq!(p.access(&roles(&["end_user"]), Resource::People, &Method::HEAD), Some(Scope::Own));
        assert_eq!(p.access(&roles(&["end_user"]), Resource::People, &Method::DELETE), None);
        assert_eq!(p.access(&roles(&["end_user"]), Resource::Audit, &Method::GET), None);
        assert_eq!(
            p.access(&roles(&["end_user", "health_professional"]), Resource::People, &Method::GET),
            Some(Scope::Global)
        );
        assert_eq!(p.access(&roles(&["health_professional"]), Resource::People, &Method::DELETE), None);
        assert_eq!(p.access(&roles(&["root"]), Resource::Audit, &Method::GET), Some(Scope::Global));
        assert_eq!(p.access(&roles(&["nobody"]), Resource::People, &Method::GET), None);
    }

    #[test]
    fn typos_are_refused() {
        assert!(Policy::parse(r#"{"root": [{"resources": ["peple"], "methods": ["GET"], "scope": "own"}]}"#).is_err());
        assert!(Policy::parse(r#"{"root": [{"resources": ["people"], "methods": ["GOT"], "scope": "own"}]}"#).is_err());
        assert!(Policy::parse(r#"{"root": [{"resources": ["people"], "methods": ["GET"], "scope": "all"}]}"#).is_err());
        assert!(Policy::parse(r#"{"end_user": []}"#).is_err(), "root is required");
    }
}
