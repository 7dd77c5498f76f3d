//! The web UI: server-rendered handlebars pages from `templates/ui/`.

use crate::http::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
}
