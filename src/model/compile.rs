//! Definitions → [`Model`]. Gathers every problem (with file:line:column) before failing.

use super::{Extension, FaultRule, Model, ResourceType, ServerModel, discovery};
use crate::definition::{self, AttributeSpec, Diagnostic, LoadedFile, LoadedProfile};
use crate::schema::{
    self, AttrType, AttributeDef, Mutability, Returned, SchemaDef, Uniqueness, urn,
};
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const RESERVED_ENDPOINTS: &[&str] = &[
    "ServiceProviderConfig",
    "ResourceTypes",
    "Schemas",
    "Bulk",
    "Me",
    ".search",
    "SecurityEvents",
];
const REFERENCE_ATTRIBUTES: &[&str] = &["members", "entitlements", "roles", "manager"];

/// Where definitions live: server files and the profile packs they may apply.
#[derive(Debug, Clone)]
pub struct Sources {
    pub servers: PathBuf,
    pub profiles: PathBuf,
    /// The files as last parsed (shared by clones: the watcher and SIGHUP reload alike).
    parsed: Arc<Mutex<ParsedFiles>>,
}

#[derive(Debug, Default)]
struct ParsedFiles {
    servers: definition::Parsed<definition::ServerDef>,
    profiles: definition::Parsed<definition::ProfileDef>,
}

impl Sources {
    pub fn new(servers: impl Into<PathBuf>, profiles: impl Into<PathBuf>) -> Sources {
        Sources {
            servers: servers.into(),
            profiles: profiles.into(),
            parsed: Default::default(),
        }
    }

    /// Loads and compiles every definition and profile.
    pub fn compile(&self) -> Result<Model, Vec<Diagnostic>> {
        self.compile_with(&[])
    }

    /// Like `compile`, plus definitions that live in memory (ephemeral servers from the admin
    /// API): they are validated exactly like files and marked ephemeral.
    pub fn compile_with(&self, extra: &[LoadedFile]) -> Result<Model, Vec<Diagnostic>> {
        self.recompile(extra, None)
    }

    /// Like `compile_with`, reusing the servers of `previous` whose inputs did not change.
    pub fn recompile(
        &self,
        extra: &[LoadedFile],
        previous: Option<&Model>,
    ) -> Result<Model, Vec<Diagnostic>> {
        let (mut files, mut problems, profiles, more) = {
            let mut parsed = crate::sync::lock(&self.parsed);
            let (files, problems) =
                definition::load_dir_reusing(&self.servers, &mut parsed.servers);
            let (profiles, more) =
                definition::load_profiles_reusing(&self.profiles, &mut parsed.profiles);
            (files, problems, profiles, more)
        };
        files.extend(extra.iter().cloned());
        problems.extend(more);
        match compile_reusing(&files, &profiles, previous) {
            Ok(mut model) if problems.is_empty() => {
                model.mark_ephemeral(extra);
                Ok(model)
            }
            Ok(_) => Err(problems),
            Err(more) => {
                problems.extend(more);
                problems
                    .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
                problems.dedup();
                Err(problems)
            }
        }
    }

    /// Every YAML file either directory holds, for per-file status.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut all = definition::yaml_files(&self.servers);
        all.extend(definition::yaml_files(&self.profiles));
        all
    }
}

/// Compiles one definition file with the profile packs in `profiles`: for the tools that take
/// a definition as a specification (`probe --contract`, `lint --definition`).
pub fn compile_file(path: &Path, profiles: &Path) -> Result<Arc<ServerModel>, Vec<Diagnostic>> {
    let located = |message: String| Diagnostic {
        file: path.to_path_buf(),
        line: 1,
        column: 1,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| vec![located(e.to_string())])?;
    let file = definition::load_str(path, &text).map_err(|d| vec![d])?;
    let (packs, problems) = definition::load_profiles(profiles);
    if !problems.is_empty() {
        return Err(problems);
    }
    let model = compile(&[file], &packs)?;
    model
        .servers
        .into_values()
        .next()
        .ok_or_else(|| vec![located("the file defines no server".into())])
}

/// Compiles parsed definition files, applying the profile packs they name.
pub fn compile(files: &[LoadedFile], profiles: &[LoadedProfile]) -> Result<Model, Vec<Diagnostic>> {
    compile_reusing(files, profiles, None)
}

/// Like [`compile`], reusing `previous`'s server for every file whose text and profile packs
/// are unchanged (a reload recompiles only what changed: with 200 servers, compiling all of
/// them took ~60% of a reload). The checks across files (ids, tokens) still see every file.
pub fn compile_reusing(
    files: &[LoadedFile],
    profiles: &[LoadedProfile],
    previous: Option<&Model>,
) -> Result<Model, Vec<Diagnostic>> {
    let profiles_hash = hash_of(
        &profiles
            .iter()
            .map(|p| (&p.path, &p.text))
            .collect::<Vec<_>>(),
    );
    let mut problems = Vec::new();
    super::profiles::check_profiles(profiles, &mut problems);
    let mut model = Model::default();
    let mut ids: HashMap<String, &Path> = HashMap::new();
    let mut tokens: HashMap<&str, &Path> = HashMap::new();
    for file in files {
        let def = &file.def;
        if let Some(other) = ids.get(&def.id.to_ascii_lowercase()) {
            problems.push(file.diagnostic(
                &["id"],
                format!(
                    "server id {:?} is already defined in {}",
                    def.id,
                    other.display()
                ),
            ));
        }
        ids.insert(def.id.to_ascii_lowercase(), &file.path);
        for token in &def.tokens {
            match tokens.get(token.as_str()) {
                Some(owner) if *owner != file.path => problems.push(file.diagnostic(
                    &["tokens"],
                    format!("a token of server {:?} is also listed in {}; each token must belong to one server", def.id, owner.display()),
                )),
                _ => {
                    tokens.insert(token, &file.path);
                }
            }
        }
        // The path is part of the hash: a server moved to another file is compiled again.
        let inputs = hash_of(&(&file.path, &file.text, profiles_hash));
        let unchanged = previous
            .and_then(|m| m.server(&def.id))
            .filter(|s| s.inputs == inputs);
        if let Some(server) = unchanged {
            model.servers.insert(server.id.clone(), server.clone());
        } else if let Some(mut server) = compile_server(file, profiles, &mut problems) {
            server.inputs = inputs;
            model.servers.insert(server.id.clone(), Arc::new(server));
        }
    }
    if problems.is_empty() {
        Ok(model)
    } else {
        Err(problems)
    }
}

/// A hash of compile inputs, compared within one process only.
fn hash_of(v: &impl Hash) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// One server definition → its model, or `None` with every problem pushed.
fn compile_server(
    file: &LoadedFile,
    profiles: &[LoadedProfile],
    problems: &mut Vec<Diagnostic>,
) -> Option<ServerModel> {
    let def = &file.def;
    let before = problems.len();
    check_settings(file, problems);
    let quirks = compile_compat(file, problems);
    let limits = compile_rate_limits(file, problems);
    let faults = compile_faults(file, problems);
    let mut resource_types = compile_resource_types(file, problems);
    if problems.len() > before {
        return None;
    }
    let applied =
        super::profiles::apply(file, &def.profiles, profiles, &mut resource_types, problems);
    if problems.len() > before {
        return None;
    }
    let mut check_references = def.validation.check_references.clone();
    for r in applied.check_references {
        if !check_references.iter().any(|c| c.eq_ignore_ascii_case(&r)) {
            check_references.push(r);
        }
    }
    let schemas = served_schemas(&resource_types);
    let mut server = ServerModel {
        id: def.id.clone(),
        description: def.description.clone(),
        source: file.path.clone(),
        tokens: def.tokens.clone(),
        auth: def.auth.clone(),
        secret_headers: (def.auth.header.iter()).map(|h| h.name.clone()).collect(),
        lifecycle: def.lifecycle,
        persona: def.persona.clone(),
        resource_types,
        schemas,
        strict: def.validation.strict,
        check_references,
        default_count: def.limits.default_count,
        max_results: def.limits.max_results,
        max_payload_bytes: def.limits.max_payload_bytes,
        bulk_max_operations: def.limits.bulk_max_operations,
        bulk_max_payload_bytes: def.limits.bulk_max_payload_bytes,
        patch_max_operations: def.limits.patch_max_operations,
        pagination: compile_pagination(file, problems),
        discovery: Default::default(),
        compat: super::compat::Compat::new(quirks),
        profiles: def.profiles.clone(),
        catalogue: applied.catalogue,
        seed: def.seed.clone(),
        seed_shape: applied.seed_shape,
        inspector: def.inspector.clone(),
        limits,
        faults,
        events: compile_events(file, problems),
        event_key: compile_event_key(file, problems),
        ephemeral: false,
        inputs: 0,
    };
    server.discovery = discovery::build(&server);
    Some(server)
}

/// `persona`: known filter operators, limits of at least one.
fn check_persona(file: &LoadedFile, problems: &mut Vec<Diagnostic>) {
    let Some(p) = &file.def.persona else { return };
    for op in p.filter_operators.iter().flatten() {
        if !crate::model::persona::FILTER_OPERATORS.contains(&op.to_ascii_lowercase().as_str()) {
            problems.push(file.diagnostic(
                &["persona", "filter_operators"],
                format!(
                    "unknown filter operator {op:?}; expected some of {:?}",
                    crate::model::persona::FILTER_OPERATORS
                ),
            ));
        }
    }
    if p.members_per_request == Some(0) || p.values_per_attribute == Some(0) {
        problems.push(file.diagnostic(
            &["persona"],
            "members_per_request and values_per_attribute are at least 1",
        ));
    }
}

/// `auth`: credentials that can be sent as written, unique OAuth clients, redirect URIs for
/// the authorization code grant.
fn check_auth(file: &LoadedFile, problems: &mut Vec<Diagnostic>) {
    let auth = &file.def.auth;
    let mut complain = |keys: &[&str], msg: String| problems.push(file.diagnostic(keys, msg));
    for b in &auth.basic {
        if b.username.is_empty() || b.username.contains(':') || b.password.is_empty() {
            complain(
                &["auth", "basic"],
                "a basic username is non-empty without ':' (RFC 7617 §2), and a password is non-empty".into(),
            );
        }
    }
    for h in &auth.header {
        let name_ok = axum::http::HeaderName::from_bytes(h.name.as_bytes()).is_ok();
        if !name_ok || h.value.is_empty() || axum::http::HeaderValue::from_str(&h.value).is_err() {
            complain(
                &["auth", "header"],
                format!(
                    "header {:?} needs a valid header name and a non-empty value",
                    h.name
                ),
            );
        }
    }
    let Some(oauth) = &auth.oauth else { return };
    let mut seen = std::collections::HashSet::new();
    for c in &oauth.clients {
        if !seen.insert(c.client_id.as_str()) {
            complain(
                &["auth", "oauth", "clients"],
                format!("client_id {:?} is defined twice", c.client_id),
            );
        }
        if c.client_id.is_empty() || c.client_secret.len() < 8 {
            complain(
                &["auth", "oauth", "clients"],
                format!(
                    "client {:?} needs a client_id and a client_secret of at least 8 characters",
                    c.client_id
                ),
            );
        }
        if c.grants.is_empty() {
            complain(
                &["auth", "oauth", "clients"],
                format!(
                    "client {:?} needs grants: client_credentials and/or authorization_code",
                    c.client_id
                ),
            );
        }
        if c.grants
            .contains(&definition::OAuthGrant::AuthorizationCode)
            && c.redirect_uris.is_empty()
        {
            complain(
                &["auth", "oauth", "clients"],
                format!(
                    "client {:?} uses authorization_code, so it needs redirect_uris",
                    c.client_id
                ),
            );
        }
        for u in &c.redirect_uris {
            if url::Url::parse(u).is_err() {
                complain(
                    &["auth", "oauth", "clients"],
                    format!(
                        "redirect URI {u:?} of client {:?} is not an absolute URI",
                        c.client_id
                    ),
                );
            }
        }
    }
    if oauth.access_token_lifetime == 0 || oauth.refresh_token_lifetime == 0 {
        complain(
            &["auth", "oauth"],
            "token lifetimes are at least one second".into(),
        );
    }
}

/// The server's own settings: id, tokens, reference checks, inspector and paging limits.
fn check_settings(file: &LoadedFile, problems: &mut Vec<Diagnostic>) {
    let def = &file.def;
    let id_ok = !def.id.is_empty()
        && def.id.len() <= 64
        && (def.id.chars()).all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        problems.push(file.diagnostic(
            &["id"],
            format!(
                "server id {:?} must be 1-64 letters, digits, '-' or '_'",
                def.id
            ),
        ));
    }
    let oauth_clients = def.auth.oauth.as_ref().map_or(0, |o| o.clients.len());
    if def.tokens.is_empty()
        && def.auth.basic.is_empty()
        && def.auth.header.is_empty()
        && oauth_clients == 0
    {
        problems.push(file.diagnostic(
            &["tokens"],
            "a server needs a way in: bearer `tokens`, or `auth` with basic, header or oauth clients",
        ));
    }
    check_auth(file, problems);
    check_persona(file, problems);
    for t in &def.tokens {
        if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            problems.push(file.diagnostic(
                &["tokens"],
                "tokens must be non-empty and contain no whitespace",
            ));
        }
    }
    if def.resource_types.is_empty() {
        problems.push(file.diagnostic(
            &["resource_types"],
            "a server must serve at least one resource type",
        ));
    }
    for r in &def.validation.check_references {
        if !REFERENCE_ATTRIBUTES
            .iter()
            .any(|a| a.eq_ignore_ascii_case(r))
        {
            problems.push(file.diagnostic(
                &["validation", "check_references"],
                format!(
                    "unknown reference attribute {r:?}; expected one of {REFERENCE_ATTRIBUTES:?}"
                ),
            ));
        }
    }
    if def.inspector.capacity == 0 {
        problems.push(file.diagnostic(
            &["inspector", "capacity"],
            "capacity must be at least 1 (set enabled: false to record nothing)",
        ));
    }
    if def.limits.max_results == 0 || def.limits.default_count > def.limits.max_results {
        problems.push(file.diagnostic(
            &["limits"],
            "limits: need 1 <= default_count <= max_results",
        ));
    }
    if def.limits.patch_max_operations == 0 {
        problems.push(file.diagnostic(
            &["limits", "patch_max_operations"],
            "patch_max_operations must be at least 1",
        ));
    }
}

/// `pagination` (RFC 9865 §4): at least one method, a default among them, sizes within
/// `limits.max_results`.
fn compile_pagination(file: &LoadedFile, problems: &mut Vec<Diagnostic>) -> super::Pagination {
    use crate::definition::PagingMethod;
    let (p, limits) = (&file.def.pagination, &file.def.limits);
    if !p.cursor && !p.index {
        problems.push(file.diagnostic(
            &["pagination"],
            "a server pages by index, by cursor or both; both are false",
        ));
    }
    let cursor_by_default = match p.default {
        Some(PagingMethod::Cursor) if !p.cursor => {
            problems.push(file.diagnostic(
                &["pagination", "default"],
                "default: cursor needs cursor: true",
            ));
            false
        }
        Some(PagingMethod::Index) if !p.index => {
            problems.push(file.diagnostic(
                &["pagination", "default"],
                "default: index needs index: true",
            ));
            true
        }
        Some(m) => m == PagingMethod::Cursor,
        // RFC 9865 §4: a provider that pages by index keeps it as the default.
        None => !p.index,
    };
    let max_page_size = p.max_page_size.unwrap_or(limits.max_results);
    let default_page_size =
        (p.default_page_size).unwrap_or_else(|| limits.default_count.min(max_page_size));
    if max_page_size == 0 || default_page_size == 0 || default_page_size > max_page_size {
        problems.push(file.diagnostic(
            &["pagination"],
            format!(
                "need 1 <= default_page_size ({default_page_size}) <= max_page_size ({max_page_size})"
            ),
        ));
    }
    if p.cursor_timeout == 0 {
        problems.push(file.diagnostic(
            &["pagination", "cursor_timeout"],
            "cursor_timeout must be at least 1 second",
        ));
    }
    super::Pagination {
        cursor: p.cursor,
        index: p.index,
        cursor_by_default,
        default_page_size,
        max_page_size: max_page_size.min(limits.max_results),
        cursor_timeout_secs: p.cursor_timeout,
    }
}

/// `events`: a signing key where the algorithm needs one.
fn compile_events(
    file: &LoadedFile,
    problems: &mut Vec<Diagnostic>,
) -> Option<crate::definition::EventsDef> {
    use crate::definition::SigningAlg;
    let e = file.def.events.clone()?;
    match (e.signing.alg, &e.signing.secret) {
        (SigningAlg::HS256, Some(s)) if s.len() >= 32 => {}
        (SigningAlg::HS256, _) => problems.push(file.diagnostic(
            &["events", "signing"],
            "HS256 needs a secret of at least 32 bytes (RFC 7518 §3.2)",
        )),
        (SigningAlg::None | SigningAlg::RS256, Some(_)) => problems.push(file.diagnostic(
            &["events", "signing", "secret"],
            "a secret is used only with alg: HS256",
        )),
        (SigningAlg::None | SigningAlg::RS256, None) => {}
    }
    if (e.signing.alg == SigningAlg::RS256) != e.signing.key_file.is_some() {
        problems.push(file.diagnostic(
            &["events", "signing"],
            "RS256 needs key_file (a PEM private key), and key_file is used only with RS256",
        ));
    }
    for (i, r) in e.receivers.iter().enumerate() {
        let ok = r
            .url
            .parse::<reqwest::Url>()
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            problems.push(file.diagnostic(
                &["events", "receivers"],
                format!("receivers[{i}]: {:?} is not an http(s) URL", r.url),
            ));
        }
    }
    if e.retry.max_attempts == 0 || e.retry.initial_ms == 0 || e.retry.max_ms < e.retry.initial_ms {
        problems.push(file.diagnostic(
            &["events", "retry"],
            "retry needs max_attempts >= 1 and 1 <= initial_ms <= max_ms",
        ));
    }
    Some(e)
}

/// The RS256 key of `events.signing.key_file` (relative to the definition), with its JWK.
fn compile_event_key(file: &LoadedFile, problems: &mut Vec<Diagnostic>) -> Option<super::EventKey> {
    use base64::Engine as _;
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::traits::PublicKeyParts;
    let signing = &file.def.events.as_ref()?.signing;
    let path = signing.key_file.as_ref()?;
    let path = match file.path.parent() {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path.clone(),
    };
    let at = ["events", "signing", "key_file"];
    let pem = match std::fs::read_to_string(&path) {
        Ok(p) => p,
        Err(e) => {
            problems.push(file.diagnostic(&at, format!("reading {}: {e}", path.display())));
            return None;
        }
    };
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&pem)
        .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(&pem));
    let key = match key {
        Ok(k) => k,
        Err(_) => {
            problems.push(file.diagnostic(
                &at,
                format!(
                    "{} is not a PEM RSA private key (PKCS#8 or PKCS#1)",
                    path.display()
                ),
            ));
            return None;
        }
    };
    let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let (n, e) = (b64(key.n().to_bytes_be()), b64(key.e().to_bytes_be()));
    let kid = signing.kid.clone().unwrap_or_else(|| {
        use sha2::Digest;
        b64(sha2::Sha256::digest(format!("{n}.{e}"))[..12].to_vec())
    });
    Some(super::EventKey {
        private_pem: pem,
        jwk: serde_json::json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}),
        kid,
    })
}

/// `compat`: personas and quirks → the quirks the server accepts.
fn compile_compat(file: &LoadedFile, problems: &mut Vec<Diagnostic>) -> Vec<super::compat::Quirk> {
    let mut quirks = Vec::new();
    let names = file
        .def
        .compat
        .as_ref()
        .map(|c| c.names())
        .unwrap_or_default();
    for name in names {
        match (super::compat::persona(name), super::compat::Quirk::parse(name)) {
            (Some(q), _) => quirks.extend(q),
            (None, Some(q)) => quirks.push(q),
            (None, None) => problems.push(file.diagnostic(
                &["compat"],
                format!(
                    "unknown persona or quirk {name:?}; personas: strict, okta, entra, onelogin; quirks: {}",
                    super::compat::ALL.iter().map(|q| q.name()).collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }
    quirks
}

fn has_resource_type(file: &LoadedFile, name: &str) -> bool {
    (file.def.resource_types.keys()).any(|k| k.eq_ignore_ascii_case(name))
}

/// `rate_limits` → the server's limits (none where they do not compile).
fn compile_rate_limits(file: &LoadedFile, problems: &mut Vec<Diagnostic>) -> super::limits::Limits {
    let limits = match super::limits::Limits::compile(&file.def.rate_limits) {
        Ok(l) => l,
        Err(errors) => {
            for (keys, message) in errors {
                let mut at = vec!["rate_limits"];
                at.extend(keys.iter().map(String::as_str));
                problems.push(file.diagnostic(&at, message));
            }
            Default::default()
        }
    };
    for (name, _) in &limits.per_type {
        if !has_resource_type(file, name) {
            problems.push(file.diagnostic(
                &["rate_limits", "per_type", name],
                format!("{name} is not a resource type of this server"),
            ));
        }
    }
    limits
}

/// `faults`: each rule well-formed and naming resource types the server has.
fn compile_faults(file: &LoadedFile, problems: &mut Vec<Diagnostic>) -> Vec<FaultRule> {
    let mut rules = Vec::new();
    for (i, f) in file.def.faults.iter().enumerate() {
        match FaultRule::compile(f.clone()) {
            Ok(rule) => rules.push(rule),
            Err(message) => {
                problems.push(file.diagnostic(&["faults"], format!("faults[{i}]: {message}")))
            }
        }
        if let Some(rt) = &f.resource_type
            && !has_resource_type(file, rt)
        {
            problems.push(file.diagnostic(
                &["faults"],
                format!("faults[{i}]: {rt} is not a resource type of this server"),
            ));
        }
    }
    rules
}

/// Schemas shared by resource types (one `Arc` per URN within a server).
#[derive(Default)]
struct SharedSchemas(BTreeMap<String, Arc<SchemaDef>>);

impl SharedSchemas {
    fn get(&mut self, s: &SchemaDef) -> Arc<SchemaDef> {
        (self.0.entry(s.id.clone()))
            .or_insert_with(|| Arc::new(s.clone()))
            .clone()
    }
}

/// `resource_types` → the compiled resource types (before profiles apply).
fn compile_resource_types(file: &LoadedFile, problems: &mut Vec<Diagnostic>) -> Vec<ResourceType> {
    let mut shared = SharedSchemas::default();
    let mut endpoints: HashMap<String, String> = HashMap::new();
    let mut out = Vec::new();
    for (name, rt) in &file.def.resource_types {
        let at = ["resource_types", name.as_str()];
        if !crate::model::path::valid_name(name) || name.contains('-') {
            problems.push(file.diagnostic(
                &at,
                format!("resource type name {name:?} must be letters, digits and '_'"),
            ));
        }
        let core = core_schema(file, name, rt.schema.as_deref(), problems);
        let endpoint = rt.endpoint.clone().unwrap_or_else(|| format!("/{name}s"));
        check_endpoint(file, name, &endpoint, &mut endpoints, problems);
        let mut extensions = compile_extensions(file, name, rt, core, &mut shared, problems);
        if !rt.attributes.is_empty() {
            extensions.push(Extension {
                schema: custom_schema(file, name, rt, problems),
                required: false,
            });
        }
        if let Some(core) = core {
            let core = shared.get(core);
            let has_groups = (core.attr("groups"))
                .is_some_and(|g| g.mutability == Mutability::ReadOnly && g.multi_valued);
            out.push(ResourceType {
                name: name.clone(),
                endpoint,
                description: (rt.description.clone()).unwrap_or_else(|| core.description.clone()),
                has_members: core.id == urn::GROUP,
                has_groups,
                schema: core,
                extensions,
                view: None,
            });
        }
    }
    admit_member_types(&mut out);
    out
}

/// A group's members may be any resource type that has `groups` (RFC 9944 §4: device groups
/// are SCIM Groups), so `members.type` and `members.$ref` name those types besides the
/// catalogue's User and Group.
fn admit_member_types(types: &mut [ResourceType]) {
    let names: Vec<String> = (types.iter())
        .filter(|t| t.has_groups || t.has_members)
        .map(|t| t.name.clone())
        .collect();
    for rt in types.iter_mut().filter(|t| t.has_members) {
        let Some(members) =
            (Arc::make_mut(&mut rt.schema).attributes.iter_mut()).find(|a| a.name == "members")
        else {
            continue;
        };
        for sub in &mut members.sub_attributes {
            let list = match sub.name.as_str() {
                "type" => &mut sub.canonical_values,
                "$ref" => &mut sub.reference_types,
                _ => continue,
            };
            for n in &names {
                if !list.iter().any(|v| v.eq_ignore_ascii_case(n)) {
                    list.push(n.clone());
                }
            }
        }
    }
}

/// The core schema of resource type `name`: the one `schema` names, else the catalogue's
/// schema of that name. Discovery and extension schemas cannot be one.
fn core_schema(
    file: &LoadedFile,
    name: &str,
    schema: Option<&str>,
    problems: &mut Vec<Diagnostic>,
) -> Option<&'static SchemaDef> {
    let catalogue = schema::catalogue();
    let at = ["resource_types", name];
    let core = match schema {
        Some(u) => catalogue.get(u).or_else(|| {
            problems.push(file.diagnostic(&[at[0], at[1], "schema"], unknown_schema(u)));
            None
        }),
        None => catalogue.by_name(name).or_else(|| {
            problems.push(file.diagnostic(
                &at,
                format!(
                    "no schema named {name:?} in the catalogue; add `schema: <URN>` (known: {})",
                    catalogue.schemas.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
                ),
            ));
            None
        }),
    }?;
    let not_core = [
        urn::SCHEMA,
        urn::RESOURCE_TYPE,
        urn::SERVICE_PROVIDER_CONFIG,
        urn::ENTERPRISE_USER,
    ];
    if not_core.contains(&core.id.as_str()) {
        problems.push(file.diagnostic(
            &at,
            format!(
                "{} describes discovery or an extension and cannot be a resource type's core schema",
                core.id
            ),
        ));
    }
    Some(core)
}

/// An endpoint is `/name`, not reserved by SCIM, and used by one resource type only.
fn check_endpoint(
    file: &LoadedFile,
    name: &str,
    endpoint: &str,
    taken: &mut HashMap<String, String>,
    problems: &mut Vec<Diagnostic>,
) {
    let at = ["resource_types", name, "endpoint"];
    let segment = endpoint.strip_prefix('/').unwrap_or("");
    if !crate::model::path::valid_name(segment) {
        problems.push(file.diagnostic(
            &at,
            format!("endpoint {endpoint:?} must be '/' followed by letters, digits, '-' or '_'"),
        ));
    } else if RESERVED_ENDPOINTS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(segment))
    {
        problems.push(file.diagnostic(&at, format!("endpoint {endpoint:?} is reserved by SCIM")));
    } else if let Some(other) = taken.insert(segment.to_ascii_lowercase(), name.to_string()) {
        problems.push(file.diagnostic(
            &at,
            format!("endpoint {endpoint:?} is also used by resource type {other:?}"),
        ));
    }
}

/// `extensions`: catalogue schemas, each once and none the core schema.
fn compile_extensions(
    file: &LoadedFile,
    name: &str,
    rt: &definition::ResourceTypeDef,
    core: Option<&SchemaDef>,
    shared: &mut SharedSchemas,
    problems: &mut Vec<Diagnostic>,
) -> Vec<Extension> {
    let at = ["resource_types", name, "extensions"];
    let mut extensions: Vec<Extension> = Vec::new();
    for ext in &rt.extensions {
        match schema::catalogue().get(ext.urn()) {
            None => problems.push(file.diagnostic(&at, unknown_schema(ext.urn()))),
            Some(s)
                if core.is_some_and(|c| c.id == s.id)
                    || extensions.iter().any(|e| e.schema.id == s.id) =>
            {
                problems.push(file.diagnostic(
                    &at,
                    format!("extension {} is listed twice or is the core schema", s.id),
                ))
            }
            Some(s) => extensions.push(Extension {
                schema: shared.get(s),
                required: ext.required(),
            }),
        }
    }
    extensions
}

/// `attributes`: the resource type's custom attributes, as an extension schema of their own.
fn custom_schema(
    file: &LoadedFile,
    name: &str,
    rt: &definition::ResourceTypeDef,
    problems: &mut Vec<Diagnostic>,
) -> Arc<SchemaDef> {
    let at = ["resource_types", name];
    let id = (rt.attributes_schema.clone())
        .unwrap_or_else(|| format!("urn:scimlab:schemas:extension:{}:2.0:{name}", file.def.id));
    if !id.starts_with("urn:")
        || id.contains(['"', '\'', ' '])
        || schema::catalogue().get(&id).is_some()
    {
        problems.push(file.diagnostic(
            &[at[0], at[1], "attributes_schema"],
            format!("{id:?} must be a new URN not in the catalogue"),
        ));
    }
    let mut attributes = Vec::new();
    for (attr_name, spec) in &rt.attributes {
        let keys = [at[0], at[1], "attributes", attr_name.as_str()];
        if let Some(a) = compile_attribute(file, &keys, attr_name, spec, false, problems) {
            attributes.push(a);
        }
    }
    Arc::new(SchemaDef {
        id,
        name: format!("{name}Extension"),
        description: format!("Custom {name} attributes of server {}", file.def.id),
        attributes,
    })
}

/// Served schemas: cores and extensions in resource-type order, then the discovery schemas.
fn served_schemas(resource_types: &[ResourceType]) -> Vec<Arc<SchemaDef>> {
    let mut schemas: Vec<Arc<SchemaDef>> = Vec::new();
    for rt in resource_types {
        for s in std::iter::once(&rt.schema).chain(rt.extensions.iter().map(|e| &e.schema)) {
            if !schemas.iter().any(|x| x.id == s.id) {
                schemas.push(s.clone());
            }
        }
    }
    for u in [
        urn::SERVICE_PROVIDER_CONFIG,
        urn::RESOURCE_TYPE,
        urn::SCHEMA,
    ] {
        let s = schema::catalogue()
            .get(u)
            .expect("discovery schemas are embedded");
        schemas.push(Arc::new(s.clone()));
    }
    schemas
}

fn unknown_schema(u: &str) -> String {
    format!(
        "unknown schema URN {u:?}; the catalogue has: {}",
        schema::catalogue()
            .schemas
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn compile_attribute(
    file: &LoadedFile,
    keys: &[&str],
    name: &str,
    spec: &AttributeSpec,
    is_sub: bool,
    problems: &mut Vec<Diagnostic>,
) -> Option<AttributeDef> {
    let before = problems.len();
    let mut complain = |msg: String| problems.push(file.diagnostic(keys, msg));
    if !crate::model::path::valid_name(name) || name == "$ref" {
        complain(format!(
            "attribute name {name:?} must start with a letter and contain only letters, digits, '-' and '_'"
        ));
    }
    let complex = spec.ty == AttrType::Complex;
    if complex && is_sub {
        complain(format!(
            "sub-attribute {name:?} cannot be complex (RFC 7643 §2.3.8)"
        ));
    }
    if complex && spec.sub_attributes.is_empty() {
        complain(format!("complex attribute {name:?} needs sub_attributes"));
    }
    if !complex && !spec.sub_attributes.is_empty() {
        complain(format!(
            "only complex attributes have sub_attributes; {name:?} is {:?}",
            spec.ty
        ));
    }
    if !spec.canonical_values.is_empty()
        && !matches!(spec.ty, AttrType::String | AttrType::Reference)
    {
        complain(format!(
            "canonical_values need a string attribute; {name:?} is {:?}",
            spec.ty
        ));
    }
    if spec.uniqueness != Uniqueness::None && (complex || spec.multi_valued || is_sub) {
        complain(format!(
            "uniqueness applies to single-valued top-level simple attributes; {name:?} is not one"
        ));
    }
    if !spec.reference_types.is_empty() && spec.ty != AttrType::Reference {
        complain(format!(
            "reference_types need type reference; {name:?} is {:?}",
            spec.ty
        ));
    }
    if spec.required && spec.mutability == Mutability::ReadOnly {
        complain(format!(
            "{name:?} is required but readOnly: clients could never set it"
        ));
    }
    if spec.returned == Returned::Always && spec.mutability == Mutability::WriteOnly {
        complain(format!("{name:?} is writeOnly but returned always"));
    }
    if spec.mutability == Mutability::WriteOnly
        && spec.returned != Returned::Never
        && spec.returned != Returned::Default
    {
        complain(format!(
            "{name:?} is writeOnly so it can only be returned never"
        ));
    }
    let pattern = spec.pattern.as_deref().and_then(|text| {
        if !matches!(
            spec.ty,
            AttrType::String | AttrType::Reference | AttrType::Integer
        ) {
            complain(format!(
                "{name:?} has a pattern, which only string, reference and integer values can have"
            ));
        }
        schema::Pattern::new(text).map_err(&mut complain).ok()
    });
    let mut subs = Vec::new();
    for (sub_name, sub) in &spec.sub_attributes {
        let mut k = keys.to_vec();
        k.extend(["sub_attributes", sub_name.as_str()]);
        if let Some(a) = compile_attribute(file, &k, sub_name, sub, true, problems) {
            subs.push(a);
        }
    }
    if problems.len() > before {
        return None;
    }
    Some(AttributeDef {
        name: name.to_string(),
        ty: spec.ty,
        multi_valued: spec.multi_valued,
        description: spec.description.clone(),
        required: spec.required,
        canonical_values: spec.canonical_values.clone(),
        case_exact: spec.case_exact,
        mutability: spec.mutability,
        // writeOnly values are never returned (RFC 7643 §7).
        returned: if spec.mutability == Mutability::WriteOnly {
            Returned::Never
        } else {
            spec.returned
        },
        uniqueness: spec.uniqueness,
        reference_types: spec.reference_types.clone(),
        sub_attributes: subs,
        pattern,
        rule: None,
    })
}
