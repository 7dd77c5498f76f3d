//! The middleware of the SCIM routes: every request to a virtual server gets a span naming
//! the server, one model snapshot, authentication, then (on a route that serves something)
//! rate limits and fault injection, and its outcome logged and recorded in the request
//! inspector. One layer does it all: each layer of axum middleware clones the inner service
//! and boxes a future per request. It is a tower layer of its own rather than `from_fn`, which
//! also boxes the inner service into a `Next` for every request.

use super::extract::{Scope, base_url, body_error, param};
use crate::error::ScimError;
use crate::harness::inspector::{Exchange, Headers};
use crate::http::{AppState, auth};
use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tracing::Instrument;

/// The layer for routes that serve something: rate limited and faulted.
pub fn served(app: &AppState) -> Exchanges {
    Exchanges {
        app: app.clone(),
        gated: true,
    }
}

/// The layer for paths below a server's base URL that no route serves (a 404): admitted and
/// recorded like any other, but not rate limited or faulted.
pub fn unserved(app: &AppState) -> Exchanges {
    Exchanges {
        app: app.clone(),
        gated: false,
    }
}

/// Runs [`exchange`] around each request to the routes it wraps.
#[derive(Clone)]
pub struct Exchanges {
    app: AppState,
    gated: bool,
}

impl<S> tower::Layer<S> for Exchanges {
    type Service = Exchanged<S>;
    fn layer(&self, route: S) -> Exchanged<S> {
        Exchanged {
            app: self.app.clone(),
            gated: self.gated,
            route,
        }
    }
}

#[derive(Clone)]
pub struct Exchanged<S> {
    app: AppState,
    gated: bool,
    route: S,
}

/// What a route answers with (axum's routes never fail).
pub trait Route:
    tower::Service<Request, Response = Response, Error = Infallible, Future: Send>
    + Clone
    + Send
    + 'static
{
}

impl<S> Route for S where
    S: tower::Service<Request, Response = Response, Error = Infallible, Future: Send>
        + Clone
        + Send
        + 'static
{
}

impl<S: Route> tower::Service<Request> for Exchanged<S> {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.route.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The route was made ready: take it and leave a clone (tower's usual way).
        let fresh = self.route.clone();
        let route = std::mem::replace(&mut self.route, fresh);
        let (app, gated) = (self.app.clone(), self.gated);
        Box::pin(async move { Ok(exchange(app, req, route, gated).await) })
    }
}

/// The route's answer to `req` (the route was made ready in `poll_ready` and taken in `call`).
async fn answer(mut route: impl Route, req: Request) -> Response {
    match route.call(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

/// One request to a virtual server, from the first byte of its body to the recorded exchange.
async fn exchange(app: AppState, req: Request, route: impl Route, gated: bool) -> Response {
    let (mut parts, body) = req.into_parts();
    let params = match RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(params) => params,
        Err(rejection) => return rejection.into_response(),
    };
    let server_id = param(&params, "server_id").unwrap_or_default().to_string();
    let span = tracing::info_span!("scim", server = %server_id);
    async move {
        let started = Instant::now();
        // One model snapshot for the whole request (a reload mid-request does not mix two).
        let mut model = app.model.load_full();
        if model.server(&server_id).is_none() && app.store.is_shared() {
            // Perhaps created on another replica a moment ago: look before answering 404.
            let (handle, store) = (app.model.clone(), app.store.clone());
            let _ =
                tokio::task::spawn_blocking(move || crate::reload::shared::adopt(&handle, &store))
                    .await;
            model = app.model.load_full();
        }
        let server = model.server(&server_id).cloned();
        // What the recorder needs is kept only when it records this server's requests.
        let recording = (app.harness.recorder.as_ref())
            .zip(server.as_ref().filter(|s| s.inspector.enabled))
            .map(|(recorder, s)| {
                (
                    recorder,
                    s.inspector.clone(),
                    s.secret_headers.clone(),
                    Headers::copy(&parts.headers),
                    chrono::Utc::now(),
                )
            });
        // The body is read once, for the handler and the recorder, up to the largest limit any
        // of this server's endpoints accepts (extractors then apply their own).
        let cap = server.as_ref().map_or(1 << 20, |s| {
            s.max_payload_bytes.max(s.bulk_max_payload_bytes)
        });
        let bytes = match axum::body::to_bytes(body, cap).await {
            Ok(b) => b,
            Err(e) => return body_error(&e, cap).into_response(),
        };
        let method = parts.method.clone();
        let uri = parts.uri.clone();
        let admitted = match &server {
            None => Err(ScimError::not_found(format!(
                "no virtual server {server_id:?}; loaded servers: {}",
                model.servers.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
            Some(s) => auth::check(&app.store, s, &parts.headers).map(|()| s.clone()),
        };
        let run = async {
            match admitted {
                Ok(server) => {
                    let endpoint = gated.then(|| param(&params, "endpoint")).flatten();
                    let rt = endpoint.and_then(|e| server.endpoint_index(e));
                    let scope = Scope {
                        base: base_url(&parts, &server_id).into(),
                        server,
                        rt,
                    };
                    parts.extensions.insert(scope.clone());
                    let req = Request::from_parts(parts, Body::from(bytes.clone()));
                    match gated {
                        true => gate(&app, &scope, req, route).await,
                        false => (answer(route, req).await, None),
                    }
                }
                Err(e) => (e.into_response(), None),
            }
        };
        let ((resp, fault), notes) = crate::vocab::notes::with_notes(run).await;
        let status = resp.status().as_u16();
        let micros = started.elapsed().as_micros() as u64;
        if status >= 500 {
            tracing::error!(method = %method, uri = %uri, status, micros, "request failed");
        } else {
            tracing::info!(method = %method, uri = %uri, status, micros, "request");
        }
        let Some((recorder, settings, secret_headers, request_headers, at)) = recording else {
            return resp;
        };
        let (parts, body) = resp.into_parts();
        let Ok(response_body) = axum::body::to_bytes(body, usize::MAX).await else {
            return Response::from_parts(parts, Body::empty());
        };
        let limit = settings.body_limit;
        let exchange = Exchange {
            at,
            method,
            target: (uri.path_and_query()).map_or_else(String::new, |p| p.as_str().to_string()),
            status,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            request_headers,
            request_body: Exchange::body(&bytes, limit, false),
            response_headers: Headers::copy(&parts.headers),
            response_body: Exchange::body(&response_body, limit, true),
            notes,
            fault,
            secret_headers,
            body_limit: limit,
            server: server_id,
        };
        recorder.record(exchange, settings.capacity);
        Response::from_parts(parts, Body::from(response_body))
    }
    .instrument(span)
    .await
}

/// Rate limits, then fault injection, for a routed request: the response, and the fault
/// injected (for the recorder).
async fn gate(
    app: &AppState,
    scope: &Scope,
    req: Request,
    route: impl Route,
) -> (Response, Option<String>) {
    let server = &scope.server;
    let m = req.method().clone();
    let search =
        (req.extensions().get::<MatchedPath>()).is_some_and(|p| p.as_str().ends_with("/.search"));
    let write = !(m == Method::GET || m == Method::HEAD || (m == Method::POST && search));
    let rt = scope.rt.map(|i| server.resource_types[i].name.as_str());
    let limits = app.harness.limits_for(server);
    if let Err(limited) = app.harness.buckets.take(&server.id, &limits, write, rt) {
        let secs = limited.retry_after.as_secs_f64().ceil().max(1.0) as u64;
        let persona = (server.persona.as_ref())
            .map(|p| format!(" (persona {})", p.name))
            .unwrap_or_default();
        let limited = ScimError::RateLimited {
            detail: format!(
                "rate limit of {} {}/{}s for {} requests exceeded on server {}{persona}; retry after {secs} s",
                limited.rate.count,
                if limited.rate.count == 1 {
                    "request"
                } else {
                    "requests"
                },
                limited.rate.period_secs,
                limited.class,
                server.id
            ),
            retry_after_secs: secs,
        };
        return (limited.into_response(), None);
    }
    let path = super::below_base(req.uri().path());
    let decided = (app.harness.faults).decide(&server.id, &server.faults, m.as_str(), path, rt);
    let Some(injection) = decided else {
        return (answer(route, req).await, None);
    };
    if injection.latency_ms > 0 {
        tokio::time::sleep(injection.delay()).await;
    }
    let note = injection.describe();
    let resp = match injection.status {
        Some(status) => ScimError::Injected {
            status,
            detail: format!("injected fault ({note}); the request was not processed"),
        }
        .into_response(),
        None => answer(route, req).await,
    };
    (resp, Some(note))
}
