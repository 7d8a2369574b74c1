//! The one page `evalgate setup` serves, rendered from `templates/setup.html.hbs`. Handlebars
//! escapes every value for HTML (`"`, `'`, `<`, `>`, `&`, `` ` ``, `=`), so the manifest's JSON
//! sits safely in the form's `value="…"` attribute and GitHub's values cannot add markup.

use super::SetupError;
use super::manifest::Manifest;
use crate::render::Templates;
use serde_json::{Value, json};

/// The compiled page (`templates/setup.html.hbs`, in the one template registry).
pub struct Page {
    templates: &'static Templates,
}

/// What the start page shows and posts.
pub struct Start<'a> {
    /// The form's target: `…/settings/apps/new?state=…`.
    pub action: &'a str,
    pub github_url: &'a str,
    pub org: Option<&'a str>,
    pub manifest: &'a Manifest,
    /// Where the files will be written.
    pub dir: &'a str,
}

impl Page {
    pub fn new() -> Result<Page, SetupError> {
        let templates = Templates::shared().map_err(|e| SetupError::Internal(format!("{e:#}")))?;
        Ok(Page { templates })
    }

    fn render(&self, data: Value) -> String {
        let data = json!({
            "start": data.get("start").cloned().unwrap_or(Value::Null),
            "done": data.get("done").cloned().unwrap_or(Value::Null),
            "error": data.get("error").cloned().unwrap_or(Value::Null),
        });
        self.templates.html("setup", &data).unwrap_or_else(|e| format!("evalgate setup: cannot render the page: {e:#}"))
    }

    pub fn start(&self, s: &Start<'_>) -> String {
        self.render(json!({ "start": {
            "action": s.action,
            "github_url": s.github_url,
            "org": s.org,
            "manifest": s.manifest.to_json(),
            "dir": s.dir,
            "webhook_url": s.manifest.hook_attributes.url,
            "permissions": s.manifest.default_permissions,
            "events": s.manifest.default_events,
        }}))
    }

    pub fn done(&self, slug: &str, id: u64, install_url: &str, settings: &str, key: &str) -> String {
        self.render(json!({ "done": {
            "slug": slug, "id": id, "install_url": install_url, "settings": settings, "key": key,
        }}))
    }

    pub fn error(&self, e: &SetupError) -> String {
        self.render(json!({ "error": { "message": e.to_string(), "hint": e.hint() } }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `value` attribute of the manifest field, unescaped as a browser would.
    fn manifest_value(html: &str) -> String {
        let start = html.find("name=\"manifest\" value=\"").expect("the field") + "name=\"manifest\" value=\"".len();
        let raw = &html[start..start + html[start..].find('"').expect("the closing quote")];
        raw.replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#x60;", "`")
            .replace("&#x3D;", "=")
            .replace("&amp;", "&")
    }

    #[test]
    fn the_manifest_survives_the_attribute_whatever_it_holds() {
        let mut manifest = Manifest::app_yml().expect("app.yml").for_public_url("https://x.test");
        manifest.name = r#"eval"gate' <b>&amp; `x`=1 "#.into();
        let page = Page::new().expect("template");
        let html = page.start(&Start {
            action: "https://github.com/settings/apps/new?state=abc",
            github_url: "https://github.com",
            org: None,
            manifest: &manifest,
            dir: "/srv/evalgate",
        });
        assert!(!html.contains("<b>"), "{html}");
        let value = manifest_value(&html);
        assert_eq!(serde_json::from_str::<Manifest>(&value).expect("the JSON posted"), manifest);
        assert!(html.contains("action=\"https://github.com/settings/apps/new?state&#x3D;abc\""), "{html}");
    }

    #[test]
    fn errors_and_the_done_page_escape_what_github_sent() {
        let page = Page::new().expect("template");
        let html = page.done("<script>", 7, "https://github.com/apps/x/installations/new", "evalgate.toml", "k.pem");
        assert!(!html.contains("<script>") && html.contains("installations/new"), "{html}");
        let html = page.error(&SetupError::ExchangeRefused { status: 422, message: "<img src=x>".into() });
        assert!(!html.contains("<img") && html.contains("422"), "{html}");
    }
}
