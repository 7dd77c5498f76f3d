//! Profiles → the compiled model: a server's profiles reshape its resource types (the attributes
//! the application sees and their rules), add its entitlement/role catalogue, narrow its view by
//! a data filter and shape its seed data.
//!
//! Combining several profiles is deterministic and "the application sees the union, the rules
//! are the strictest": visible attributes are the union; `required` holds if any profile says
//! so; mutability takes the most restrictive rule (readOnly > immutable > writeOnce >
//! readWrite); `returned` takes the most visible (always > default > request > never);
//! canonical values are intersected; data filters are combined with `and`; catalogues are
//! merged item by item (a category is required if any profile says so and multi-valued only if
//! all do); seed shapes override key by key in the order the server lists its profiles. What
//! cannot be combined (required and readOnly, disjoint canonical values, one id with two
//! meanings) is a located error.

use super::{Category, Extension, ResourceType, View};
use crate::definition::{
    AttributeRule, CategoryKind, Diagnostic, LoadedFile, LoadedProfile, SeedShape,
};
use crate::filter::{self, Filter};
use crate::model::Target;
use crate::model::path::{AttrPath, common};
use crate::schema::{
    self, AttrType, AttributeDef, Mutability, ProfileRule, Returned, RuleMutability, SchemaDef, urn,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Checks what can be checked in a profile on its own (id, filter syntax, catalogue ids).
pub fn check_profiles(profiles: &[LoadedProfile], problems: &mut Vec<Diagnostic>) {
    let mut ids: HashMap<String, &std::path::Path> = HashMap::new();
    for p in profiles {
        let def = &p.def;
        if !valid_id(&def.id) {
            problems.push(p.diagnostic(
                &["id"],
                format!(
                    "profile id {:?} must be 1-64 letters, digits, '-' or '_'",
                    def.id
                ),
            ));
        }
        if let Some(other) = ids.insert(def.id.to_ascii_lowercase(), &p.path) {
            problems.push(p.diagnostic(
                &["id"],
                format!(
                    "profile id {:?} is already defined in {}",
                    def.id,
                    other.display()
                ),
            ));
        }
        if let Some(f) = &def.data_filter
            && let Err(e) = filter::parse(f)
        {
            problems.push(p.diagnostic(
                &["data_filter"],
                format!("data_filter is not a SCIM filter: {}", e.detail()),
            ));
        }
        let mut item_ids: HashMap<&str, &str> = HashMap::new();
        for (cat, c) in &def.catalogue {
            if !crate::model::path::valid_name(cat) || cat.contains('-') {
                problems.push(p.diagnostic(
                    &["catalogue", cat],
                    format!("category {cat:?} must be a resource type name: letters, digits, '_'"),
                ));
            }
            for item in &c.items {
                if item.id.is_empty()
                    || item.id.contains(|ch: char| ch.is_whitespace() || ch == '/')
                {
                    problems.push(p.diagnostic(
                        &["catalogue", cat, "items"],
                        format!(
                            "item id {:?} must be non-empty without spaces or '/'",
                            item.id
                        ),
                    ));
                }
                if let Some(other) = item_ids.insert(&item.id, cat) {
                    problems.push(p.diagnostic(
                        &["catalogue", cat, "items"],
                        format!(
                            "item id {:?} is also used in category {other}; ids are unique on a server",
                            item.id
                        ),
                    ));
                }
            }
        }
        for (name, template) in &def.seed.patterns {
            if let Err(message) = crate::definition::patterns::check_pattern(name, template) {
                problems.push(p.diagnostic(&["seed", "patterns", name], message));
            }
        }
        if let Some(rate) = def.seed.active_rate
            && !(0.0..=1.0).contains(&rate)
        {
            problems.push(p.diagnostic(
                &["seed", "active_rate"],
                "active_rate must be between 0.0 and 1.0",
            ));
        }
    }
}

fn common_external_id() -> &'static AttributeDef {
    common()
        .attr("externalId")
        .expect("externalId is a common attribute")
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What applying a server's profiles produced besides the reshaped resource types.
#[derive(Debug, Default)]
pub struct Applied {
    pub catalogue: Vec<Category>,
    pub seed_shape: SeedShape,
    /// Reference attributes the catalogue makes checked (`entitlements`, `roles`).
    pub check_references: Vec<String>,
}

/// One attribute's rules as merged so far.
#[derive(Debug, Default)]
struct Merged {
    profiles: Vec<String>,
    returned: Option<Returned>,
    mutability: Option<RuleMutability>,
    required: bool,
    canonical: Option<Vec<String>>,
}

/// Where an attribute lives: extension URN (None for the core schema), name, sub-attribute.
type Key = (Option<String>, String, Option<String>);

/// Applies `names` (the server's `profiles:` list) to `resource_types`.
pub fn apply(
    file: &LoadedFile,
    names: &[String],
    all: &[LoadedProfile],
    resource_types: &mut Vec<ResourceType>,
    problems: &mut Vec<Diagnostic>,
) -> Applied {
    let mut applied = Applied::default();
    let server = &file.def.id;
    let chosen = choose(file, names, all, problems);
    // Catalogue first: it may add resource types and makes `entitlements`/`roles` visible.
    let categories = merge_categories(&chosen, problems);
    add_catalogue(server, categories, resource_types, &mut applied, problems);
    apply_attribute_rules(file, &chosen, resource_types, &applied.catalogue, problems);
    merge_seed_shapes(&chosen, &mut applied.seed_shape);
    applied
}

/// The profiles `names` lists, each once and each known.
fn choose<'a>(
    file: &LoadedFile,
    names: &[String],
    all: &'a [LoadedProfile],
    problems: &mut Vec<Diagnostic>,
) -> Vec<&'a LoadedProfile> {
    let mut chosen: Vec<&LoadedProfile> = Vec::new();
    for name in names {
        match all.iter().find(|p| p.def.id.eq_ignore_ascii_case(name)) {
            Some(p) if chosen.iter().any(|c| std::ptr::eq(*c, p)) => problems
                .push(file.diagnostic(&["profiles"], format!("profile {name:?} is listed twice"))),
            Some(p) => chosen.push(p),
            None => problems.push(file.diagnostic(&["profiles"], unknown(name, all))),
        }
    }
    chosen
}

/// What to say about a profile name no loaded pack has. With no pack loaded at all, the
/// directory is the likelier mistake (a command run outside the checkout), so it says where
/// packs come from.
fn unknown(name: &str, all: &[LoadedProfile]) -> String {
    if all.is_empty() {
        return format!(
            "unknown profile {name:?}: no profile pack is loaded; point --profiles (or \
             SCIMLAB_PROFILES) at a directory of profile packs, such as the profiles/ \
             directory scimlab ships"
        );
    }
    let ids: Vec<&str> = all.iter().map(|p| p.def.id.as_str()).collect();
    format!(
        "unknown profile {name:?}; the loaded profile packs are: {}",
        ids.join(", ")
    )
}

/// The catalogue categories of the chosen profiles, merged by name (case-insensitive), with
/// the profile that first defined each.
fn merge_categories<'a>(
    chosen: &[&'a LoadedProfile],
    problems: &mut Vec<Diagnostic>,
) -> BTreeMap<String, (Category, &'a LoadedProfile)> {
    let mut categories: BTreeMap<String, (Category, &LoadedProfile)> = BTreeMap::new();
    for p in chosen {
        for (name, c) in &p.def.catalogue {
            let kind = c.kind.unwrap_or(if name.eq_ignore_ascii_case("Role") {
                CategoryKind::Role
            } else {
                CategoryKind::Entitlement
            });
            match categories.get_mut(&name.to_ascii_lowercase()) {
                None => {
                    categories.insert(
                        name.to_ascii_lowercase(),
                        (
                            Category {
                                name: name.clone(),
                                kind,
                                applies_to: p.def.resource_type.clone(),
                                required: c.required,
                                multi_valued: c.multi_valued,
                                items: c.items.clone(),
                                profiles: vec![p.def.id.clone()],
                            },
                            p,
                        ),
                    );
                }
                Some((cat, first)) => {
                    let at = ["catalogue", name.as_str()];
                    if cat.kind != kind {
                        problems.push(p.diagnostic(
                            &at,
                            format!(
                                "category {name} holds {kind:?}s here but {:?}s in profile {} ({})",
                                cat.kind,
                                first.def.id,
                                first.path.display()
                            ),
                        ));
                    }
                    cat.required |= c.required;
                    cat.multi_valued &= c.multi_valued;
                    cat.profiles.push(p.def.id.clone());
                    for item in &c.items {
                        match cat.items.iter().find(|i| i.id == item.id) {
                            Some(same) if same == item => {}
                            Some(_) => problems.push(p.diagnostic(
                                &[at[0], at[1], "items"],
                                format!(
                                    "item {:?} differs from the one in profile {} ({}); one id, one meaning",
                                    item.id, first.def.id, first.path.display()
                                ),
                            )),
                            None => cat.items.push(item.clone()),
                        }
                    }
                }
            }
        }
    }
    categories
}

/// Each category: item ids unique on the server, its resource type served (added when the
/// server lacks it), its reference attribute checked.
fn add_catalogue(
    server: &str,
    categories: BTreeMap<String, (Category, &LoadedProfile)>,
    resource_types: &mut Vec<ResourceType>,
    applied: &mut Applied,
    problems: &mut Vec<Diagnostic>,
) {
    let mut seen_ids: HashMap<String, String> = HashMap::new();
    for (cat, p) in categories.into_values() {
        let wanted = match cat.kind {
            CategoryKind::Entitlement => urn::OKTA_ENTITLEMENT,
            CategoryKind::Role => urn::OKTA_ROLE,
        };
        for item in &cat.items {
            if let Some(other) = seen_ids.insert(item.id.clone(), cat.name.clone())
                && other != cat.name
            {
                problems.push(p.diagnostic(
                    &["catalogue", &cat.name, "items"],
                    format!("item id {:?} is also used in category {other} on server {server}; ids are unique on a server", item.id),
                ));
            }
        }
        match resource_types
            .iter()
            .find(|rt| rt.name.eq_ignore_ascii_case(&cat.name))
        {
            Some(rt) if rt.schema.id != wanted => problems.push(p.diagnostic(
                &["catalogue", &cat.name],
                format!(
                    "server {server} serves {} with schema {}, but this category needs {wanted}",
                    rt.name, rt.schema.id
                ),
            )),
            Some(_) => {}
            None => {
                let Some(schema) = schema::catalogue().get(wanted) else {
                    continue;
                };
                let endpoint = format!("/{}s", cat.name);
                if resource_types
                    .iter()
                    .any(|rt| rt.endpoint.eq_ignore_ascii_case(&endpoint))
                {
                    problems.push(p.diagnostic(
                        &["catalogue", &cat.name],
                        format!("endpoint {endpoint} for category {} is already used on server {server}", cat.name),
                    ));
                    continue;
                }
                resource_types.push(ResourceType {
                    name: cat.name.clone(),
                    endpoint,
                    description: format!(
                        "{} catalogue of profile {}",
                        schema.name,
                        cat.profiles.join(", ")
                    ),
                    schema: Arc::new(schema.clone()),
                    extensions: Vec::new(),
                    has_members: false,
                    has_groups: false,
                    view: None,
                });
            }
        }
        let reference = match cat.kind {
            CategoryKind::Entitlement => "entitlements",
            CategoryKind::Role => "roles",
        };
        if !applied.check_references.iter().any(|r| r == reference) {
            applied.check_references.push(reference.into());
        }
        applied.catalogue.push(cat);
    }
}

/// Attribute rules and data filters, per target resource type.
fn apply_attribute_rules(
    file: &LoadedFile,
    chosen: &[&LoadedProfile],
    resource_types: &mut [ResourceType],
    catalogue: &[Category],
    problems: &mut Vec<Diagnostic>,
) {
    let server = &file.def.id;
    let mut targets: Vec<String> = Vec::new();
    for p in chosen {
        if !targets
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&p.def.resource_type))
        {
            targets.push(p.def.resource_type.clone());
        }
    }
    for target in targets {
        let Some(rt) = resource_types
            .iter_mut()
            .find(|rt| rt.name.eq_ignore_ascii_case(&target))
        else {
            for p in chosen
                .iter()
                .filter(|p| p.def.resource_type.eq_ignore_ascii_case(&target))
            {
                problems.push(p.diagnostic(
                    &["resource_type"],
                    format!("server {server} does not serve resource type {target:?}"),
                ));
            }
            continue;
        };
        let profiles: Vec<&LoadedProfile> = chosen
            .iter()
            .copied()
            .filter(|p| p.def.resource_type.eq_ignore_ascii_case(&target))
            .collect();
        let mut rules: BTreeMap<Key, Merged> = BTreeMap::new();
        for p in &profiles {
            for (path_text, rule) in &p.def.attributes {
                merge_rule(server, rt, p, path_text, rule, &mut rules, problems);
            }
        }
        // Assignments need their attribute, whatever the profiles list.
        for cat in catalogue
            .iter()
            .filter(|c| c.applies_to.eq_ignore_ascii_case(&rt.name))
        {
            let attr = match cat.kind {
                CategoryKind::Entitlement => "entitlements",
                CategoryKind::Role => "roles",
            };
            if rt.schema.attr(attr).is_some() {
                rules.entry((None, attr.into(), None)).or_default();
            }
        }
        reshape(rt, &rules);
        rt.view = compile_view(file, &profiles, rt, problems);
    }
}

/// The view: every profile's data filter must hold. Checked once here: every read by id and
/// every write applies it.
fn compile_view(
    file: &LoadedFile,
    profiles: &[&LoadedProfile],
    rt: &ResourceType,
    problems: &mut Vec<Diagnostic>,
) -> Option<View> {
    let server = &file.def.id;
    let mut view: Option<(Filter, Vec<String>)> = None;
    for p in profiles {
        let Some(text) = &p.def.data_filter else {
            continue;
        };
        let Ok(f) = filter::parse(text) else { continue }; // reported by check_profiles
        if let Err(e) = super::query::check(&f, rt) {
            problems.push(p.diagnostic(
                &["data_filter"],
                format!("data_filter on server {server}: {}", e.detail()),
            ));
            continue;
        }
        view = Some(match view {
            None => (f, vec![p.def.id.clone()]),
            Some((v, mut names)) => {
                names.push(p.def.id.clone());
                (Filter::And(Box::new(v), Box::new(f)), names)
            }
        });
    }
    view.and_then(|(filter, names)| match super::query::check(&filter, rt) {
        Ok(_) => Some(View {
            text: filter.to_string(),
            filter,
            profiles: names.join(", "),
        }),
        Err(e) => {
            problems.push(file.diagnostic(
                &["profiles"],
                format!("the combined data filter: {}", e.detail()),
            ));
            None
        }
    })
}

/// Seed data shapes: later profiles override earlier ones key by key.
fn merge_seed_shapes(chosen: &[&LoadedProfile], shape: &mut SeedShape) {
    for p in chosen {
        let s = &p.def.seed;
        if !s.domains.is_empty() {
            shape.domains = s.domains.clone();
        }
        if s.active_rate.is_some() {
            shape.active_rate = s.active_rate;
        }
        if !s.groups.is_empty() {
            shape.groups = s.groups.clone();
        }
        for (k, v) in &s.patterns {
            shape.patterns.insert(k.clone(), v.clone());
        }
    }
}

/// Resolves one rule's path and merges the rule into `rules`.
fn merge_rule(
    server: &str,
    rt: &mut ResourceType,
    p: &LoadedProfile,
    path_text: &str,
    rule: &AttributeRule,
    rules: &mut BTreeMap<Key, Merged>,
    problems: &mut Vec<Diagnostic>,
) {
    let at = ["attributes", path_text];
    let mut complain = |msg: String| problems.push(p.diagnostic(&at, msg));
    let path = match AttrPath::parse(path_text) {
        Ok(path) => path,
        Err(e) => return complain(e.detail().to_string()),
    };
    // Naming an attribute of a catalogue extension the server does not list adds the extension.
    if let Some(u) = &path.urn
        && !u.eq_ignore_ascii_case(&rt.schema.id)
        && rt.extension(u).is_none()
        && let Some(ext) = schema::catalogue().get(u)
        && ext.id == urn::ENTERPRISE_USER
    {
        rt.extensions.push(Extension {
            schema: Arc::new(ext.clone()),
            required: false,
        });
    }
    let (key, attr, sub) = match rt.resolve(&path) {
        Ok(Target::Doc(r)) if !std::ptr::eq(r.attr, common_external_id()) => (
            (
                r.extension.map(str::to_string),
                r.attr.name.clone(),
                r.sub.map(|s| s.name.clone()),
            ),
            r.attr.clone(),
            r.sub.cloned(),
        ),
        Ok(_) => {
            return complain(format!(
                "{path_text}: id, externalId, meta and schemas are seen by every application and take no rules"
            ));
        }
        Err(_) => {
            return complain(format!(
                "{path_text} is not an attribute of {} on server {server} (schemas: {})",
                rt.name,
                rt.schemas()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    };
    let leaf = sub.as_ref().unwrap_or(&attr);
    if rule.mutability.is_some() && sub.is_some() {
        return complain(format!(
            "{path_text}: mutability rules apply to whole attributes; put it on {}",
            attr.name
        ));
    }
    if leaf.mutability == Mutability::WriteOnly
        && (rule.mutability.is_some() || rule.returned.is_some_and(|r| r != Returned::Never))
    {
        return complain(format!(
            "{path_text} is writeOnly: it is never returned and takes no mutability rule"
        ));
    }
    if leaf.mutability == Mutability::ReadOnly
        && rule
            .mutability
            .is_some_and(|m| m != RuleMutability::ReadOnly)
    {
        return complain(format!(
            "{path_text} is readOnly in its schema; a profile cannot make it writable"
        ));
    }
    if rule.canonical_values.is_some() && !matches!(leaf.ty, AttrType::String | AttrType::Reference)
    {
        return complain(format!(
            "{path_text}: canonical_values need a string attribute; it is {:?}",
            leaf.ty
        ));
    }
    let m = rules.entry(key).or_default();
    m.profiles.push(p.def.id.clone());
    if let Some(r) = rule.returned {
        let rank = |r: Returned| match r {
            Returned::Always => 3,
            Returned::Default => 2,
            Returned::Request => 1,
            Returned::Never => 0,
        };
        m.returned = Some(match m.returned {
            Some(old) if rank(old) >= rank(r) => old,
            _ => r,
        });
    }
    if let Some(mu) = rule.mutability {
        m.mutability = Some(m.mutability.map_or(mu, |old| old.max(mu)));
    }
    m.required |= rule.required;
    if m.required && m.mutability == Some(RuleMutability::ReadOnly) {
        complain(format!(
            "{path_text} is required and readOnly once profiles {} are combined: no client could ever set it",
            m.profiles.join(", ")
        ));
    }
    if let Some(values) = &rule.canonical_values {
        let next: Vec<String> = match &m.canonical {
            None => values.clone(),
            Some(old) => old
                .iter()
                .filter(|v| values.iter().any(|x| x.eq_ignore_ascii_case(v)))
                .cloned()
                .collect(),
        };
        if next.is_empty() {
            complain(format!(
                "{path_text}: canonical_values share no value with those of profiles {}",
                m.profiles.join(", ")
            ));
        }
        m.canonical = Some(next);
    }
}

/// Rewrites `rt`'s schemas to what its profiles show: listed attributes with their rules,
/// `userName`-like required attributes, and the server's own custom extensions.
fn reshape(rt: &mut ResourceType, rules: &BTreeMap<Key, Merged>) {
    let catalogue = schema::catalogue();
    let core = shape_schema(&rt.schema, None, rules, true);
    rt.schema = Arc::new(core);
    let mut extensions = Vec::new();
    for ext in rt.extensions.drain(..) {
        // The server file's own attributes are always part of the view.
        if catalogue.get(&ext.schema.id).is_none() {
            extensions.push(ext);
            continue;
        }
        let shaped = shape_schema(&ext.schema, Some(&ext.schema.id), rules, ext.required);
        if !shaped.attributes.is_empty() {
            extensions.push(Extension {
                schema: Arc::new(shaped),
                required: ext.required,
            });
        }
    }
    rt.extensions = extensions;
}

fn shape_schema(
    schema: &SchemaDef,
    ext: Option<&str>,
    rules: &BTreeMap<Key, Merged>,
    keep_required: bool,
) -> SchemaDef {
    let ext = ext.map(str::to_string);
    let mut out = SchemaDef {
        attributes: Vec::new(),
        ..schema.clone()
    };
    for attr in &schema.attributes {
        let whole = rules.get(&(ext.clone(), attr.name.clone(), None));
        let subs: Vec<(&AttributeDef, &Merged)> = attr
            .sub_attributes
            .iter()
            .filter_map(|s| {
                rules
                    .get(&(ext.clone(), attr.name.clone(), Some(s.name.clone())))
                    .map(|m| (s, m))
            })
            .collect();
        if whole.is_none() && subs.is_empty() && !(keep_required && attr.required) {
            continue;
        }
        let mut a = attr.clone();
        if whole.is_none() && !subs.is_empty() {
            // Only the listed sub-attributes are seen.
            a.sub_attributes
                .retain(|s| subs.iter().any(|(x, _)| x.name == s.name));
        }
        if let Some(m) = whole {
            apply_rule(&mut a, m);
        }
        for (s, m) in subs {
            if let Some(target) = a.sub_attributes.iter_mut().find(|x| x.name == s.name) {
                apply_rule(target, m);
            }
            if m.required {
                a.required = true;
            }
        }
        out.attributes.push(a);
    }
    out
}

fn apply_rule(a: &mut AttributeDef, m: &Merged) {
    if let Some(r) = m.returned {
        a.returned = r;
    }
    if m.required {
        a.required = true;
    }
    if let Some(values) = &m.canonical {
        a.canonical_values = values.clone();
    }
    if let Some(mu) = m.mutability {
        a.mutability = mu.served();
        a.description = format!(
            "{} (profile {}: {})",
            a.description,
            m.profiles.join(", "),
            mu.name()
        )
        .trim_start()
        .to_string();
    }
    a.rule = Some(ProfileRule {
        profiles: m.profiles.join(", "),
        mutability: m.mutability,
    });
}
