//! Profile rules that need the store: the data filter (view) a resource must satisfy to exist
//! for this server's clients, and the catalogue's per-category assignment rules (Okta's
//! Required and Multi-valued).

use super::Ctx;
use crate::definition::CategoryKind;
use crate::error::{ScimError, ScimResult};
use crate::filter::Filter;
use crate::store::Conn;
use serde_json::{Map, Value};

/// Whether stored resource `id` is inside the resource type's view (always, without one).
pub fn visible(ctx: &Ctx<'_>, conn: &dyn Conn, id: &str) -> ScimResult<bool> {
    let Some(view) = &ctx.rt.view else {
        return Ok(true);
    };
    let query = crate::model::query::check(&view.filter, ctx.rt)?;
    conn.satisfies(&ctx.server.id, id, &query)
        .map_err(super::store_err(ctx))
}

/// After a write (inside its transaction): the result must stay inside the view.
pub fn check_in_view(ctx: &Ctx<'_>, conn: &dyn Conn, id: &str) -> ScimResult<()> {
    if visible(ctx, conn, id)? {
        return Ok(());
    }
    let view = ctx
        .rt
        .view
        .as_ref()
        .map(|v| (v.profiles.as_str(), v.text.as_str()));
    let (profiles, text) = view.unwrap_or_default();
    Err(ScimError::invalid_value(format!(
        "this {} would be outside the application's view (profile {profiles} shows only {} matching {text}); change the values the filter tests",
        ctx.rt.name, ctx.rt.endpoint
    )))
}

/// The client's filter narrowed to the view: `(view) and (filter)`.
pub fn within_view(ctx: &Ctx<'_>, filter: Option<Filter>) -> Option<Filter> {
    match (&ctx.rt.view, filter) {
        (None, f) => f,
        (Some(v), None) => Some(v.filter.clone()),
        (Some(v), Some(f)) => Some(Filter::And(Box::new(v.filter.clone()), Box::new(f))),
    }
}

/// Okta's per-category rules: a required category needs at least one item on every resource
/// it applies to; a single-valued one allows at most one.
pub fn check_assignments(
    ctx: &Ctx<'_>,
    conn: &dyn Conn,
    doc: &Map<String, Value>,
) -> ScimResult<()> {
    let categories: Vec<_> = ctx
        .server
        .catalogue
        .iter()
        .filter(|c| c.applies_to.eq_ignore_ascii_case(&ctx.rt.name))
        .filter(|c| c.required || !c.multi_valued)
        .collect();
    if categories.is_empty() {
        return Ok(());
    }
    for cat in categories {
        let attr = match cat.kind {
            CategoryKind::Entitlement => "entitlements",
            CategoryKind::Role => "roles",
        };
        let values = doc.get(attr).and_then(Value::as_array);
        let mut held = 0;
        for v in values.into_iter().flatten() {
            let in_category = match v.get("type").and_then(Value::as_str) {
                Some(t) => t.eq_ignore_ascii_case(&cat.name),
                // No type: the category is the resource type of the referenced resource.
                None => match v.get("value").and_then(Value::as_str) {
                    Some(id) => conn
                        .get(&ctx.server.id, id)
                        .map_err(super::store_err(ctx))?
                        .is_some_and(|r| r.resource_type.eq_ignore_ascii_case(&cat.name)),
                    None => false,
                },
            };
            held += usize::from(in_category);
        }
        let choices = || {
            cat.items
                .iter()
                .map(|i| format!("{} ({})", i.id, i.display_name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let profiles = cat.profiles.join(", ");
        if cat.required && held == 0 {
            return Err(ScimError::invalid_value(format!(
                "every {} needs at least one {} (category {} is required by profile {profiles}); add {attr}: [{{\"value\": \"<id>\", \"type\": \"{}\"}}] with one of: {}",
                ctx.rt.name,
                cat.name,
                cat.name,
                cat.name,
                choices()
            )));
        }
        if !cat.multi_valued && held > 1 {
            return Err(ScimError::invalid_value(format!(
                "a {} holds at most one {} (category {} is single-valued in profile {profiles}); this one has {held}",
                ctx.rt.name, cat.name, cat.name
            )));
        }
    }
    Ok(())
}
