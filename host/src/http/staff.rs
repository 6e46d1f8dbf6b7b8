//! Staff members: created by admins, listed for staff (to pick a relationship manager).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{AdminOnly, ApiJson, Auth, StaffOrAdmin};
use crate::domain::FieldErrors;
use crate::domain::contact::EmailAddress;
use crate::store::{NewStaff, Staff};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_staff, list_staff))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewStaffRequest {
    name: String,
    #[serde(default)]
    email: Option<String>,
}

/// Adds a staff member.
#[utoipa::path(
    post,
    path = "/api/v1/staff",
    tag = "staff",
    request_body = NewStaffRequest,
    security(("api_key" = ["admin"])),
    responses(
        (status = 201, body = Staff),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_staff(
    State(state): State<AppState>,
    _: Auth<AdminOnly>,
    ApiJson(request): ApiJson<NewStaffRequest>,
) -> ApiResult<(StatusCode, Json<Staff>)> {
    let mut errors = FieldErrors::default();
    let name = request.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        errors.add("name", "a name has 1 to 200 characters");
    }
    let email = match request.email.as_deref().map(EmailAddress::parse) {
        None => None,
        Some(Ok(email)) => Some(email.as_str().to_owned()),
        Some(Err(e)) => {
            errors.add("email", e);
            None
        }
    };
    errors.into_result(()).map_err(ApiError::invalid)?;
    let staff = state
        .store
        .create_staff(NewStaff {
            name,
            email,
            created_at: state.clock.now(),
        })
        .await?;
    Ok((StatusCode::CREATED, Json(staff)))
}

/// Every staff member, by name.
#[utoipa::path(
    get,
    path = "/api/v1/staff",
    tag = "staff",
    security(("api_key" = ["admin", "staff"])),
    responses((status = 200, body = [Staff]))
)]
async fn list_staff(
    State(state): State<AppState>,
    _: Auth<StaffOrAdmin>,
) -> ApiResult<Json<Vec<Staff>>> {
    Ok(Json(state.store.list_staff().await?))
}
