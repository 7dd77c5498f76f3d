//! Seed patterns, as profile packs write them: which patterns exist, the handlebars helpers
//! they may use, and the check a pack's pattern passes when it loads. (Seeding renders them.)

use handlebars::{Handlebars, handlebars_helper};

/// Pattern names a pack may override.
pub const PATTERNS: &[&str] = &[
    "user_name",
    "display_name",
    "email_work",
    "email_home",
    "phone_work",
    "phone_mobile",
    "employee_number",
    "external_id",
    "street_address",
    "group_name",
];

handlebars_helper!(lower: |s: str| s.to_lowercase());
handlebars_helper!(upper: |s: str| s.to_uppercase());
handlebars_helper!(pad: |n: u64, width: u64| format!("{n:0w$}", w = width as usize));
handlebars_helper!(slice: |s: str, from: u64, to: u64| {
    s.chars().skip(from as usize).take(to.saturating_sub(from) as usize).collect::<String>()
});

/// A handlebars registry with the helpers seed patterns may use.
pub fn registry() -> Handlebars<'static> {
    let mut h = Handlebars::new();
    h.set_strict_mode(true);
    h.register_escape_fn(handlebars::no_escape);
    h.register_helper("lower", Box::new(lower));
    h.register_helper("upper", Box::new(upper));
    h.register_helper("pad", Box::new(pad));
    h.register_helper("slice", Box::new(slice));
    h
}

/// Checks one pattern as a profile pack writes it: known name, valid template.
pub fn check_pattern(name: &str, template: &str) -> Result<(), String> {
    if !PATTERNS.contains(&name) {
        return Err(format!(
            "unknown seed pattern {name:?}; patterns: {}",
            PATTERNS.join(", ")
        ));
    }
    registry()
        .register_template_string(name, template)
        .map_err(|e| format!("seed pattern {name:?} is not a valid handlebars template: {e}"))
}
