//! Caller roles and what each may reach.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The role an API key carries.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the installation: keys, plugins, privacy requests, the audit log.
    Admin,
    /// Circulation staff: the call centre, the reception desk, club managers.
    Staff,
    /// Advertisers and ad sales: audience aggregates only, never a reader.
    Advertiser,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Staff, Role::Advertiser];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Staff => "staff",
            Self::Advertiser => "advertiser",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
