//! Read-your-writes with a hot standby: each request runs in a session telling the store
//! whether it writes and which WAL position its caller's last write reached.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use crate::store::replica;

/// Sets the request's session; after a writing request that was not refused, remembers where the primary's log
/// stood for its caller (by its `Authorization` header, hashed), so that the caller's next
/// requests read its writes even from the standby.
pub async fn sessions(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(standby) = state.store.standby() else {
        return next.run(req).await;
    };
    let writes = !req.method().is_safe();
    let caller = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|credentials| standby.caller(credentials.as_bytes()));
    let response = replica::within(standby.session(caller, writes), next.run(req)).await;
    // A refused request (4xx) wrote nothing: every change runs in one transaction.
    if writes
        && !response.status().is_client_error()
        && let Some(caller) = caller
    {
        standby.wrote(caller).await;
    }
    response
}
