//! What evalgate shows on GitHub and on its report page, rendered from `templates/` with
//! handlebars, and kept within GitHub's limits.

use anyhow::Context as _;
use handlebars::Handlebars;
use serde_json::Value;

/// GitHub's limit on a check run's `output.summary` and `output.text`, in characters.
pub const MAX_CHECK_TEXT: usize = 65_535;
/// GitHub's limit on an issue comment's body, in characters.
pub const MAX_COMMENT: usize = 65_536;

const PR_COMMENT: &str = include_str!("../../templates/pr-comment.md.hbs");
const PRE_REGISTRATION: &str = include_str!("../../templates/pre-registration.md.hbs");
const GOLDEN_SET: &str = include_str!("../../templates/golden-set.md.hbs");
const PIN_BUMP: &str = include_str!("../../templates/pin-bump.md.hbs");
const REPORT_PAGE: &str = include_str!("../../templates/report.html.hbs");
const CHECK_SUMMARY: &str = include_str!("../../templates/check-summary.md.hbs");
const SETUP_PAGE: &str = include_str!("../../templates/setup.html.hbs");

/// The compiled templates: every one of `templates/`, in one registry for markdown (GitHub's
/// text: nothing escaped) and one for HTML (everything escaped).
pub struct Templates {
    markdown: Handlebars<'static>,
    html: Handlebars<'static>,
}

impl Templates {
    pub fn new() -> anyhow::Result<Templates> {
        let mut markdown = Handlebars::new();
        markdown.set_strict_mode(true);
        markdown.register_escape_fn(handlebars::no_escape);
        markdown.register_template_string("pr-comment", PR_COMMENT).context("templates/pr-comment.md.hbs")?;
        markdown
            .register_template_string("pre-registration", PRE_REGISTRATION)
            .context("templates/pre-registration.md.hbs")?;
        markdown.register_template_string("golden-set", GOLDEN_SET).context("templates/golden-set.md.hbs")?;
        markdown.register_template_string("pin-bump", PIN_BUMP).context("templates/pin-bump.md.hbs")?;
        markdown.register_template_string("check-summary", CHECK_SUMMARY).context("templates/check-summary.md.hbs")?;
        // The page escapes everything it shows: case inputs and outputs are untrusted text.
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        html.register_template_string("report", REPORT_PAGE).context("templates/report.html.hbs")?;
        html.register_template_string("setup", SETUP_PAGE).context("templates/setup.html.hbs")?;
        Ok(Templates { markdown, html })
    }

    /// One compiled set for the whole process (the CLI's report writer, `evalgate setup`).
    pub fn shared() -> anyhow::Result<&'static Templates> {
        static SHARED: std::sync::OnceLock<Result<Templates, String>> = std::sync::OnceLock::new();
        SHARED
            .get_or_init(|| Templates::new().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// `templates/{name}.html.hbs` rendered with `data`, every value escaped for HTML.
    pub fn html(&self, name: &str, data: &Value) -> anyhow::Result<String> {
        self.html.render(name, data).with_context(|| format!("rendering templates/{name}.html.hbs"))
    }

    pub fn markdown(&self, name: &str, data: &Value) -> anyhow::Result<String> {
        self.markdown.render(name, data).with_context(|| format!("rendering templates/{name}.md.hbs"))
    }

    pub fn report_page(&self, data: &Value) -> anyhow::Result<String> {
        self.html("report", data)
    }
}

/// `text` cut to at most `limit` characters at a line boundary, ending with how many lines were
/// cut and where the whole is (`link`).
pub fn fit(text: &str, limit: usize, link: Option<&str>) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    let total_lines = text.lines().count();
    let note = |cut: usize| match link {
        Some(url) => format!("\n\n_… {cut} more lines not shown here: [the full report]({url})._\n"),
        None => format!("\n\n_… {cut} more lines not shown here._\n"),
    };
    // Reserve room for the longest note this cut could need.
    let room = limit.saturating_sub(note(total_lines).chars().count());
    let mut kept = String::new();
    let mut used = 0;
    let mut lines = 0;
    for line in text.lines() {
        let n = line.chars().count() + 1;
        if used + n > room {
            break;
        }
        kept.push_str(line);
        kept.push('\n');
        used += n;
        lines += 1;
    }
    if lines == 0 {
        // One enormous line: cut inside it.
        kept = text.chars().take(room).collect();
    }
    kept.push_str(&note(total_lines - lines));
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles_into_the_one_registry() {
        let t = Templates::shared().expect("the templates compile");
        let err = t.markdown("no-such-template", &serde_json::json!({})).expect_err("unknown");
        assert!(format!("{err:#}").contains("templates/no-such-template.md.hbs"), "{err:#}");
        // Strict mode: a field the data lacks is an error, never an empty string.
        assert!(t.html("report", &serde_json::json!({})).is_err());
    }

    #[test]
    fn short_text_is_left_alone() {
        assert_eq!(fit("a\nb\n", 100, None), "a\nb\n");
    }

    #[test]
    fn long_text_is_cut_at_a_line_with_a_count_and_a_link() {
        let text: String = (0..10_000).map(|i| format!("- case {i}\n")).collect();
        let out = fit(&text, MAX_CHECK_TEXT, Some("http://x/runs/1?token=t"));
        assert!(out.chars().count() <= MAX_CHECK_TEXT);
        let shown = out.lines().filter(|l| l.starts_with("- case")).count();
        assert!(out.contains(&format!("{} more lines not shown", 10_000 - shown)), "{}", &out[out.len() - 200..]);
        assert!(out.contains("(http://x/runs/1?token=t)"));
    }

    #[test]
    fn one_enormous_line_is_cut_inside() {
        let out = fit(&"x".repeat(100_000), 1_000, None);
        assert!(out.chars().count() <= 1_000);
    }

    #[test]
    fn every_template_compiles() {
        assert!(Templates::new().is_ok());
    }
}
