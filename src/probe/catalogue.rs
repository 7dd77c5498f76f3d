//! Every check the probe can make: what it enforces (with the RFC section), the fix it points
//! to, and how `--compat` treats it. The list is versioned: a change of what `--compat`
//! forgives bumps [`COMPAT_VERSION`].

/// Version of the `--compat` list below (reported in every run).
pub const COMPAT_VERSION: u32 = 1;

/// How `--compat` treats a failed check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compat {
    /// A failure in both modes.
    Strict,
    /// A warning with `--compat`: a widespread deviation that compliant clients tolerate.
    Forgiven(&'static str),
    /// A failure in both modes even though it is widespread: it breaks compliant clients.
    NeverForgiven(&'static str),
}

pub struct CheckDef {
    pub id: &'static str,
    pub title: &'static str,
    /// The RFC section the check enforces.
    pub rfc: &'static str,
    /// Key of the fix in [`FIXES`].
    pub fix: &'static str,
    pub compat: Compat,
}

const fn c(
    id: &'static str,
    title: &'static str,
    rfc: &'static str,
    fix: &'static str,
) -> CheckDef {
    CheckDef {
        id,
        title,
        rfc,
        fix,
        compat: Compat::Strict,
    }
}

const fn forgiven(d: CheckDef, why: &'static str) -> CheckDef {
    CheckDef {
        compat: Compat::Forgiven(why),
        ..d
    }
}

const fn never(d: CheckDef, why: &'static str) -> CheckDef {
    CheckDef {
        compat: Compat::NeverForgiven(why),
        ..d
    }
}

pub const CHECKS: &[CheckDef] = &[
    // Discovery
    c(
        "discovery.spc",
        "GET /ServiceProviderConfig answers 200 with the config",
        "RFC 7644 §4; RFC 7643 §5",
        "discovery",
    ),
    c(
        "discovery.spc.shape",
        "the config has patch, bulk, filter, changePassword, sort, etag and authenticationSchemes",
        "RFC 7643 §5",
        "discovery",
    ),
    c(
        "discovery.resource_types",
        "GET /ResourceTypes answers a ListResponse of resource types with name, endpoint and schema",
        "RFC 7644 §4; RFC 7643 §6",
        "discovery",
    ),
    c(
        "discovery.schemas",
        "GET /Schemas answers a ListResponse of schemas",
        "RFC 7644 §4; RFC 7643 §7",
        "discovery",
    ),
    c(
        "discovery.schemas.wellformed",
        "every served schema is well formed (attribute names, types, characteristics)",
        "RFC 7643 §7",
        "schemas",
    ),
    c(
        "discovery.schemas.complete",
        "every resource type's schema and schema extensions are served in /Schemas",
        "RFC 7643 §6, §7",
        "schemas",
    ),
    forgiven(
        c(
            "http.content_type",
            "responses with a body are application/scim+json",
            "RFC 7644 §3.1, §8.1",
            "content_type",
        ),
        "many servers answer application/json, which every IdP accepts",
    ),
    // Lifecycle
    c(
        "lifecycle.create",
        "POST creates the resource: 201 with the resource, its id and meta",
        "RFC 7644 §3.3",
        "create",
    ),
    forgiven(
        c(
            "lifecycle.location",
            "POST answers a Location header equal to meta.location",
            "RFC 7644 §3.3, §3.1",
            "location",
        ),
        "clients read meta.location instead",
    ),
    c(
        "lifecycle.meta",
        "meta has resourceType, created, lastModified and location",
        "RFC 7643 §3.1",
        "meta",
    ),
    c(
        "lifecycle.get",
        "GET by id answers 200 with what was created",
        "RFC 7644 §3.4.1",
        "read",
    ),
    c(
        "lifecycle.put",
        "PUT answers 200 and what was sent persists (extension attributes included)",
        "RFC 7644 §3.5.1",
        "put",
    ),
    c(
        "lifecycle.patch",
        "PATCH answers 200 with the resource, or 204",
        "RFC 7644 §3.5.2",
        "patch",
    ),
    c(
        "lifecycle.delete",
        "DELETE answers 204, and the resource is then gone (404)",
        "RFC 7644 §3.6",
        "delete",
    ),
    c(
        "lifecycle.burst",
        "a rapid burst of creates and deletes succeeds",
        "RFC 7644 §3.3, §3.6",
        "create",
    ),
    // Groups
    c(
        "groups.members",
        "members added and removed by PATCH (members[value eq \"…\"]) are reflected",
        "RFC 7644 §3.5.2.1, §3.5.2.2",
        "members",
    ),
    c(
        "groups.user_groups",
        "User.groups reflects group membership",
        "RFC 7643 §4.1.2",
        "user_groups",
    ),
    // Search
    c(
        "search.eq",
        "filter eq finds exactly the matching resource",
        "RFC 7644 §3.4.2.2",
        "filter",
    ),
    never(
        c(
            "search.case_insensitive",
            "userName matches case-insensitively (caseExact false)",
            "RFC 7643 §4.1.1; RFC 7644 §3.4.2.2",
            "filter_case",
        ),
        "Okta and Entra look users up by userName in any case: a miss creates duplicates",
    ),
    c(
        "search.operators",
        "co, sw, ew, pr, gt/ge/lt/le, and, or and not select what they should",
        "RFC 7644 §3.4.2.2",
        "filter",
    ),
    c(
        "search.value_path",
        "a value path such as emails[type eq \"work\"] filters",
        "RFC 7644 §3.4.2.2",
        "filter",
    ),
    never(
        c(
            "search.empty",
            "a filter that matches nothing answers 200 with an empty ListResponse",
            "RFC 7644 §3.4.2",
            "filter_empty",
        ),
        "IdPs read 404 as a failure: Entra's Test Connection and Okta's lookups break",
    ),
    c(
        "search.paging",
        "startIndex and count page through results (1-based, itemsPerPage, totalResults)",
        "RFC 7644 §3.4.2.4",
        "paging",
    ),
    forgiven(
        c(
            "search.count_zero",
            "count=0 answers totalResults without resources",
            "RFC 7644 §3.4.2.4",
            "paging",
        ),
        "few clients send count=0",
    ),
    c(
        "search.max_results",
        "a count over maxResults is capped at maxResults",
        "RFC 7644 §3.4.2.4; RFC 7643 §5",
        "paging",
    ),
    c(
        "search.cursor",
        "where pagination.cursor is advertised, pages by nextCursor cover every result once and the last has no nextCursor",
        "RFC 9865 §2, §4",
        "cursor_paging",
    ),
    c(
        "search.cursor_invalid",
        "a cursor the server did not issue answers 400 invalidCursor",
        "RFC 9865 §2.1",
        "cursor_paging",
    ),
    c(
        "search.sort",
        "sortBy and sortOrder order results, as sort.supported says",
        "RFC 7644 §3.4.2.3",
        "sort",
    ),
    c(
        "search.post",
        "POST /.search with a SearchRequest answers like GET",
        "RFC 7644 §3.4.3",
        "post_search",
    ),
    c(
        "search.resources_valid",
        "resources inside a ListResponse match the served schemas",
        "RFC 7644 §3.4.2; RFC 7643 §2",
        "list_resources",
    ),
    c(
        "search.invalid_filter",
        "a malformed filter answers 400 invalidFilter",
        "RFC 7644 §3.4.2.2, §3.12",
        "errors",
    ),
    // PATCH
    c(
        "patch.pathless",
        "a path-less replace sets the attributes of its value",
        "RFC 7644 §3.5.2.3",
        "patch",
    ),
    c(
        "patch.value_filter",
        "a path with a value filter (emails[type eq \"work\"].value) replaces the selected value",
        "RFC 7644 §3.5.2.3",
        "patch_filter",
    ),
    c(
        "patch.remove_filter",
        "remove with a value filter removes the selected values",
        "RFC 7644 §3.5.2.2",
        "patch_filter",
    ),
    c(
        "patch.add_multi",
        "add to a multi-valued attribute appends",
        "RFC 7644 §3.5.2.1",
        "patch",
    ),
    never(
        c(
            "patch.atomic",
            "a PatchOp whose last operation fails leaves the resource unchanged",
            "RFC 7644 §3.5.2",
            "patch_atomic",
        ),
        "a half-applied change silently corrupts data",
    ),
    c(
        "config.change_password",
        "with changePassword.supported, a PATCH sets the password, which is never returned",
        "RFC 7643 §5, §4.1.1",
        "change_password",
    ),
    // ETags and Bulk
    c(
        "etag.header",
        "resources carry an ETag equal to meta.version",
        "RFC 7644 §3.14",
        "etag",
    ),
    c(
        "etag.if_match",
        "If-Match with a stale version answers 412",
        "RFC 7644 §3.14",
        "etag",
    ),
    c(
        "etag.if_none_match",
        "If-None-Match with the current version answers 304",
        "RFC 7644 §3.14",
        "etag",
    ),
    c(
        "bulk.bulk_id",
        "Bulk resolves bulkId references between operations",
        "RFC 7644 §3.7",
        "bulk",
    ),
    // Errors
    c(
        "errors.not_found",
        "an unknown id answers 404 with an error body",
        "RFC 7644 §3.12",
        "errors",
    ),
    never(
        c(
            "errors.uniqueness",
            "a duplicate unique value answers 409 uniqueness",
            "RFC 7644 §3.3, §3.12",
            "uniqueness",
        ),
        "IdPs match on 409 to link existing accounts",
    ),
    c(
        "errors.invalid_syntax",
        "a body that is not JSON answers 400 invalidSyntax",
        "RFC 7644 §3.12",
        "errors",
    ),
    c(
        "errors.invalid_value",
        "a missing required attribute answers 400 invalidValue",
        "RFC 7644 §3.12",
        "errors",
    ),
    c(
        "errors.unauthorized",
        "a request without credentials answers 401",
        "RFC 7644 §2",
        "auth",
    ),
    c(
        "errors.too_large",
        "a body over the advertised maxPayloadSize answers 413",
        "RFC 7644 §3.7.4",
        "errors",
    ),
    forgiven(
        c(
            "errors.body",
            "error bodies have the Error schema, status as a string, and detail",
            "RFC 7644 §3.12",
            "errors",
        ),
        "most clients only read the HTTP status",
    ),
    // Identity providers' own request sequences
    c(
        "okta.test_connection",
        "Okta's Test Connection (GET /Users?startIndex=1&count=2) lists users",
        "Okta SCIM guide",
        "okta",
    ),
    c(
        "okta.lookup",
        "Okta's lookup of an unknown userName answers an empty ListResponse; a known one is found in any case",
        "Okta SCIM guide",
        "okta",
    ),
    c(
        "okta.create_json",
        "Okta's create with Content-Type application/json answers 201",
        "Okta SCIM guide; RFC 7644 §3.1",
        "okta",
    ),
    c(
        "okta.put",
        "Okta's PUT update persists",
        "Okta SCIM guide",
        "okta",
    ),
    c(
        "okta.deactivate",
        "Okta's path-less PATCH {active: false} deactivates",
        "Okta SCIM guide",
        "okta",
    ),
    c(
        "okta.group_rename",
        "Okta's group rename (PATCH replace with {id, displayName}) renames",
        "Okta SCIM guide",
        "okta",
    ),
    c(
        "okta.members",
        "Okta's member add (members array) and removal (members[value eq]) apply",
        "Okta SCIM guide",
        "okta",
    ),
    c(
        "entra.test_connection",
        "Entra's Test Connection (filter on a random userName) answers an empty ListResponse",
        "Entra SCIM guide",
        "entra",
    ),
    c(
        "entra.capitalized_ops",
        "Entra's capitalised ops (\"Replace\") apply",
        "Entra SCIM guide",
        "entra",
    ),
    c(
        "entra.boolean_strings",
        "Entra's \"active\": \"False\" deactivates",
        "Entra SCIM guide",
        "entra",
    ),
    c(
        "entra.dotted_keys",
        "Entra's path-less replace with dotted and URN keys applies",
        "Entra SCIM guide",
        "entra",
    ),
    c(
        "entra.work_email",
        "Entra's add to emails[type eq \"work\"].value on a user without emails creates it",
        "Entra SCIM guide",
        "entra",
    ),
    c(
        "entra.group_lookup",
        "Entra's group lookup (displayName eq, excludedAttributes=members) finds the group",
        "Entra SCIM guide",
        "entra",
    ),
    c(
        "entra.member_remove",
        "Entra's member removal with a value list removes the member",
        "Entra SCIM guide",
        "entra",
    ),
    c(
        "onelogin.enterprise_urn",
        "OneLogin's enterprise extension URN (urn:scim:schemas:extension:enterprise:2.0) is accepted",
        "OneLogin SCIM docs",
        "onelogin",
    ),
    // Contract (a scimlab definition as the specification)
    c(
        "contract.resource_types",
        "every resource type of the contract is advertised with its endpoint, schema and extensions",
        "contract; RFC 7643 §6",
        "contract",
    ),
    c(
        "contract.attributes",
        "every attribute of the contract is served with the same characteristics",
        "contract; RFC 7643 §7",
        "contract",
    ),
    c(
        "contract.canonical",
        "a value outside canonicalValues is refused (400)",
        "contract; RFC 7643 §2.3.1",
        "contract_enforce",
    ),
    c(
        "contract.unique",
        "a duplicate value of a unique attribute is refused (409)",
        "contract; RFC 7643 §2.4",
        "contract_enforce",
    ),
    c(
        "contract.immutable",
        "a change to an immutable (or writeOnce) value is refused (400 mutability)",
        "contract; RFC 7643 §2.2",
        "contract_enforce",
    ),
    c(
        "contract.required",
        "a resource without a required attribute is refused (400)",
        "contract; RFC 7643 §2.4",
        "contract_enforce",
    ),
];

pub fn check(id: &str) -> &'static CheckDef {
    CHECKS
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("probe check {id} is not in the catalogue"))
}

/// A fix: what is wrong, what to change, why it matters.
pub struct FixDef {
    pub key: &'static str,
    /// 1 (most urgent) to 3.
    pub priority: u8,
    pub trouble: &'static str,
    pub fix: &'static str,
    pub rationale: &'static str,
}

const fn f(
    key: &'static str,
    priority: u8,
    trouble: &'static str,
    fix: &'static str,
    rationale: &'static str,
) -> FixDef {
    FixDef {
        key,
        priority,
        trouble,
        fix,
        rationale,
    }
}

pub const FIXES: &[FixDef] = &[
    f(
        "change_password",
        2,
        "password changes do not work as the config claims",
        "accept PATCH/PUT of password (writeOnly, returned never) or advertise changePassword.supported: false",
        "IdPs sync passwords only where the config says they can",
    ),
    f(
        "discovery",
        2,
        "discovery endpoints are missing or malformed",
        "serve /ServiceProviderConfig, /ResourceTypes and /Schemas as RFC 7644 §4 describes",
        "IdPs read them to decide what to send; Okta reads /ResourceTypes to find entitlements",
    ),
    f(
        "schemas",
        2,
        "served schemas are malformed or incomplete",
        "serve every schema and extension of every resource type, each attribute with name, type and characteristics",
        "clients build their attribute mappings from /Schemas",
    ),
    f(
        "content_type",
        3,
        "responses are not application/scim+json",
        "send Content-Type: application/scim+json on SCIM responses",
        "strict clients refuse other media types",
    ),
    f(
        "create",
        1,
        "creating resources fails or answers the wrong shape",
        "answer POST with 201 and the created resource, its id and meta",
        "every provisioning flow starts with a create",
    ),
    f(
        "location",
        3,
        "created resources have no Location header",
        "send Location: <meta.location> with 201",
        "RFC 7644 §3.3 requires it; some clients follow it",
    ),
    f(
        "meta",
        2,
        "meta is incomplete",
        "fill meta.resourceType, created, lastModified, location (and version with ETags)",
        "clients use lastModified for sync and location for follow-up requests",
    ),
    f(
        "read",
        1,
        "a created resource cannot be read back",
        "answer GET /{endpoint}/{id} with 200 and the resource",
        "IdPs read after write to confirm",
    ),
    f(
        "put",
        1,
        "PUT loses or ignores what was sent",
        "replace the resource with the PUT body, extension attributes included",
        "Okta's App Wizard apps update with PUT",
    ),
    f(
        "patch",
        1,
        "PATCH is missing or does not apply operations",
        "implement RFC 7644 §3.5.2 add/replace/remove, with and without path",
        "Okta deactivates and Entra updates through PATCH",
    ),
    f(
        "patch_filter",
        2,
        "PATCH paths with value filters are not supported",
        "support attr[filter].sub paths for replace and remove",
        "Entra updates emails[type eq \"work\"].value",
    ),
    f(
        "patch_atomic",
        1,
        "a failed PatchOp leaves part of its changes",
        "apply all operations to a copy and store it only if every one succeeds",
        "RFC 7644 §3.5.2 makes a PatchOp atomic; partial updates corrupt data silently",
    ),
    f(
        "delete",
        1,
        "DELETE does not remove the resource",
        "answer DELETE with 204 and 404 afterwards",
        "deprovisioning relies on it",
    ),
    f(
        "members",
        1,
        "group membership changes are not applied",
        "support add to members and remove of members[value eq \"…\"]",
        "every IdP pushes group membership this way",
    ),
    f(
        "user_groups",
        2,
        "User.groups does not reflect memberships",
        "derive User.groups from group membership (readOnly)",
        "RFC 7643 §4.1.2",
    ),
    f(
        "filter",
        1,
        "filters are not applied correctly",
        "implement RFC 7644 §3.4.2.2 filters: eq first, then the other operators, and/or/not and value paths",
        "IdPs look every user up by filter before they create one",
    ),
    f(
        "filter_case",
        1,
        "userName filters are case-sensitive",
        "compare userName case-insensitively (caseExact: false)",
        "a missed lookup makes the IdP create a duplicate account",
    ),
    f(
        "filter_empty",
        1,
        "a filter matching nothing is an error",
        "answer 200 with totalResults 0 and no resources",
        "Entra's Test Connection and Okta's lookups treat errors as failures",
    ),
    f(
        "cursor_paging",
        2,
        "cursor paging does not work as /ServiceProviderConfig advertises",
        "answer cursor= (empty) with the first page, put nextCursor on every page but the last, and refuse unknown cursors with 400 invalidCursor; or advertise pagination.cursor: false",
        "clients that page by cursor (RFC 9865) loop forever, stop early or skip resources",
    ),
    f(
        "paging",
        2,
        "paging parameters are not honoured",
        "apply startIndex (1-based) and count, capped at maxResults, and report itemsPerPage and totalResults",
        "Okta imports users page by page",
    ),
    f(
        "sort",
        3,
        "sorting does not match sort.supported",
        "implement sortBy/sortOrder or advertise sort.supported: false",
        "the config must say what the server does",
    ),
    f(
        "post_search",
        3,
        "POST /.search is not supported",
        "accept SearchRequest bodies at /{endpoint}/.search",
        "RFC 7644 §3.4.3; long filters need it",
    ),
    f(
        "list_resources",
        2,
        "resources inside ListResponses do not match the schemas",
        "return each resource with schemas, id and meta, as GET by id does",
        "clients parse list results like single resources",
    ),
    f(
        "etag",
        3,
        "ETags are advertised but not honoured",
        "send ETag equal to meta.version and honour If-Match / If-None-Match, or advertise etag.supported: false",
        "clients rely on 412 to avoid lost updates",
    ),
    f(
        "bulk",
        3,
        "Bulk is advertised but bulkId references fail",
        "resolve bulkId:<id> references in paths and data, or advertise bulk.supported: false",
        "RFC 7644 §3.7",
    ),
    f(
        "errors",
        2,
        "errors have the wrong status or body",
        "answer client mistakes with the RFC 7644 §3.12 status, scimType and an Error body",
        "clients branch on status and scimType",
    ),
    f(
        "uniqueness",
        1,
        "duplicates are accepted or answered with the wrong status",
        "answer a duplicate unique value with 409 and scimType uniqueness",
        "IdPs link existing accounts on 409",
    ),
    f(
        "auth",
        1,
        "requests without credentials are accepted",
        "answer 401 with WWW-Authenticate when credentials are missing",
        "an open SCIM endpoint exposes every account",
    ),
    f(
        "okta",
        2,
        "requests Okta sends are mishandled",
        "accept the Okta request shapes listed in the report",
        "Okta tenants send exactly these",
    ),
    f(
        "entra",
        2,
        "requests Microsoft Entra ID sends are mishandled",
        "accept the Entra request shapes listed in the report (or ask tenants to use ?aadOptscim062020)",
        "Entra tenants send exactly these",
    ),
    f(
        "onelogin",
        3,
        "requests OneLogin sends are mishandled",
        "accept OneLogin's enterprise extension URN",
        "OneLogin sends it",
    ),
    f(
        "contract",
        2,
        "the server does not advertise what its contract declares",
        "serve the resource types and attributes of the definition with the same characteristics",
        "the contract is what the team agreed the app must do",
    ),
    f(
        "contract_enforce",
        1,
        "the server does not enforce its contract",
        "refuse non-canonical, duplicate, immutable-changing and incomplete writes as the contract says",
        "unenforced rules let bad data in",
    ),
];

pub fn fix(key: &str) -> &'static FixDef {
    FIXES
        .iter()
        .find(|f| f.key == key)
        .unwrap_or_else(|| panic!("probe fix {key} is not in the catalogue"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_every_fix_exists() {
        let mut ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate check ids");
        for c in CHECKS {
            fix(c.fix);
            assert!(!c.rfc.is_empty() && !c.title.is_empty(), "{}", c.id);
        }
    }
}
