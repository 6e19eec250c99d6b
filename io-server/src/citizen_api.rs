//! The citizen API under `/app/v1` (io-reference §7): what the app calls, authenticated by a
//! bearer token through [`crate::citizen_token::CitizenVerifier`].

use std::sync::Arc;

use axum::Router;

use crate::app::App;

/// The `/app/v1` routes.
pub fn router(_app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
}
