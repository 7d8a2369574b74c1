//! Pre-registration: what a PR says it changed, what it expects to move and the thresholds it
//! must meet, written in the PR body *before* anyone sees results (SPEC "Pre-registration").
//!
//! The body is markdown written by people, often from a template, so the reader is lenient
//! about form (any heading level, any case, trailing colons, list bullets, CRLF) and strict about
//! substance: every section must say something, and every threshold line must be a known key
//! with a valid value. Text inside HTML comments and fenced code blocks does not count, so a
//! template whose guidance sits in `<!-- -->` reads as empty rather than as filled in.
//! Every problem is reported at once, each with its line, so one edit fixes them all.

use crate::decode::did_you_mean;
use crate::gate::Key;
use std::collections::BTreeMap;
use thiserror::Error;

/// The SPEC's example, shown in the failing check's message so authors can copy it.
pub const TEMPLATE: &str = "\
### What changed
Tightened the refund prompt's policy section.
### Expected to move
refund-agent: pass rate up on refund golden set; cost flat.
### Success threshold
max_regression_rate: 1%
min_pass_rate: 95%
";

const WHAT_CHANGED: &str = "### What changed";
const EXPECTED_TO_MOVE: &str = "### Expected to move";
const SUCCESS_THRESHOLD: &str = "### Success threshold";

/// The three required sections, in the order they are reported.
const SECTIONS: [&str; 3] = [WHAT_CHANGED, EXPECTED_TO_MOVE, SUCCESS_THRESHOLD];

/// `critical_tags` is a gate key but not a number: it stays with the base branch's bundle.
const CRITICAL_TAGS: &str = "critical_tags";

/// A PR body's pre-registration, every part present and valid.
#[derive(Debug, Clone, PartialEq)]
pub struct PreRegistration {
    /// The section's text, without comments or fenced blocks, trimmed.
    pub what_changed: String,
    pub expected_to_move: String,
    /// In the order written.
    pub thresholds: Vec<PreThreshold>,
}

/// One `key: value` line of `### Success threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct PreThreshold {
    pub key: Key,
    pub value: f64,
    /// 1-based line in the body, to point the author at it.
    pub line: usize,
}

/// Something wrong with the pre-registration. `Display` names the line where there is one.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Problem {
    #[error(
        "the PR body is empty: it needs the sections `### What changed`, `### Expected to move` and `### Success threshold`"
    )]
    NoBody,
    #[error("missing section `{heading}`")]
    MissingSection { heading: &'static str },
    #[error("line {line}: section `{heading}` is empty (text in comments or code blocks does not count)")]
    EmptySection { heading: &'static str, line: usize },
    /// Two sections of one name make it ambiguous which one holds; only the first is read.
    #[error("line {line}: section `{heading}` appears again (first at line {first_line})")]
    DuplicateSection { heading: &'static str, line: usize, first_line: usize },
    #[error("line {line}: unknown key `{key}` ({})", key_hint(*did_you_mean))]
    UnknownKey { key: String, line: usize, did_you_mean: Option<&'static str> },
    /// A gate key that pre-registration cannot set (`critical_tags`).
    #[error(
        "line {line}: `{key}` cannot be set by pre-registration: it is not a numeric threshold, and the base branch's `gate:` block decides it"
    )]
    NotSettable { key: String, line: usize },
    /// `reason` comes from [`Key::parse_value`] and names the key and the value.
    #[error("line {line}: {reason}")]
    BadValue { key: Key, value: String, line: usize, reason: String },
    #[error("line {line}: `{key}` is set again (first at line {first_line})")]
    DuplicateKey { key: Key, line: usize, first_line: usize },
    #[error("line {line}: expected `key: value`, found `{text}`")]
    NotAKeyValue { line: usize, text: String },
}

impl Problem {
    /// The 1-based body line the problem is on, for those that have one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Problem::NoBody | Problem::MissingSection { .. } => None,
            Problem::EmptySection { line, .. }
            | Problem::DuplicateSection { line, .. }
            | Problem::UnknownKey { line, .. }
            | Problem::NotSettable { line, .. }
            | Problem::BadValue { line, .. }
            | Problem::DuplicateKey { line, .. }
            | Problem::NotAKeyValue { line, .. } => Some(*line),
        }
    }
}

fn key_hint(did_you_mean: Option<&str>) -> String {
    match did_you_mean {
        Some(k) => format!("did you mean `{k}`?"),
        None => format!("known keys: {}", key_names().map(|k| format!("`{k}`")).join(", ")),
    }
}

fn key_names() -> [&'static str; Key::ALL.len()] {
    Key::ALL.map(Key::as_str)
}

/// Reads the pre-registration from a PR body, reporting every problem (sorted by line, those
/// without one first).
pub fn parse(body: Option<&str>) -> Result<PreRegistration, Vec<Problem>> {
    let Some(body) = body.filter(|b| !b.trim().is_empty()) else { return Err(vec![Problem::NoBody]) };
    let mut problems = Vec::new();
    let sections = split_sections(&visible_lines(body), &mut problems);
    let [what, expected, threshold] = sections;
    let what_changed = prose(WHAT_CHANGED, what.as_ref(), &mut problems);
    let expected_to_move = prose(EXPECTED_TO_MOVE, expected.as_ref(), &mut problems);
    let thresholds = match (prose(SUCCESS_THRESHOLD, threshold.as_ref(), &mut problems), &threshold) {
        (Some(_), Some(section)) => Some(thresholds(&section.lines, &mut problems)),
        _ => None,
    };
    problems.sort_by_key(Problem::line);
    match (what_changed, expected_to_move, thresholds) {
        (Some(what_changed), Some(expected_to_move), Some(thresholds)) if problems.is_empty() => {
            Ok(PreRegistration { what_changed, expected_to_move, thresholds })
        }
        _ => Err(problems),
    }
}

/// The pre-registered thresholds as the gate takes them ([`crate::gate::Thresholds::tighten`]).
pub fn thresholds_of(p: &PreRegistration) -> Vec<(Key, f64)> {
    p.thresholds.iter().map(|t| (t.key, t.value)).collect()
}

/// A line of the body as markdown shows it: comments removed, fenced blocks dropped.
#[derive(Debug, Clone, PartialEq)]
enum Visible {
    /// A heading's title, normalised for matching (lowercase, single spaces, no trailing `:`).
    Heading(String),
    Text(String),
}

/// The body's lines with what a reader does not see taken out: HTML comments (also across
/// lines) and fenced code blocks, fences included. Headings inside either do not count.
fn visible_lines(body: &str) -> Vec<(usize, Visible)> {
    let mut out = Vec::new();
    let mut fence: Option<(char, usize)> = None;
    let mut in_comment = false;
    for (i, raw) in body.lines().enumerate() {
        let line = i + 1;
        if let Some((c, n)) = fence {
            if is_closing_fence(raw, c, n) {
                fence = None;
            }
            continue;
        }
        let text = strip_comments(raw, &mut in_comment);
        if let Some(f) = opening_fence(&text) {
            fence = Some(f);
            continue;
        }
        out.push((line, heading(&text).map_or(Visible::Text(text), Visible::Heading)));
    }
    out
}

/// The line without its HTML comments; `in_comment` carries an open `<!--` to the next line.
fn strip_comments(raw: &str, in_comment: &mut bool) -> String {
    let mut out = String::new();
    let mut rest = raw;
    loop {
        if *in_comment {
            match rest.find("-->") {
                Some(end) => {
                    rest = &rest[end + 3..];
                    *in_comment = false;
                }
                None => return out,
            }
        }
        match rest.find("<!--") {
            Some(start) => {
                out.push_str(&rest[..start]);
                rest = &rest[start + 4..];
                *in_comment = true;
            }
            None => {
                out.push_str(rest);
                return out;
            }
        }
    }
}

/// At most three spaces of indentation, as markdown allows before a block marker.
fn unindent(s: &str) -> Option<&str> {
    let rest = s.trim_start_matches(' ');
    (s.len() - rest.len() <= 3).then_some(rest)
}

/// A line opening a fenced block (three or more `` ` `` or `~`): the fence char and length.
fn opening_fence(s: &str) -> Option<(char, usize)> {
    let rest = unindent(s)?;
    let c = rest.chars().next().filter(|c| matches!(c, '`' | '~'))?;
    let n = rest.chars().take_while(|&x| x == c).count();
    // A backtick fence's info string cannot hold a backtick (that would be inline code).
    (n >= 3 && !(c == '`' && rest[n..].contains('`'))).then_some((c, n))
}

fn is_closing_fence(s: &str, c: char, n: usize) -> bool {
    let Some(rest) = unindent(s) else { return false };
    let len = rest.chars().take_while(|&x| x == c).count();
    len >= n && rest[len * c.len_utf8()..].trim().is_empty()
}

/// An ATX heading's normalised title (`#` to `######`, then a space or the end of the line).
fn heading(s: &str) -> Option<String> {
    let rest = unindent(s)?;
    let level = rest.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let title = &rest[level..];
    if !(title.is_empty() || title.starts_with([' ', '\t'])) {
        return None;
    }
    // An optional closing sequence of `#`s, then the tolerated trailing colons and spaces.
    let title = title.trim().trim_end_matches('#').trim_end_matches(|c: char| c == ':' || c.is_whitespace());
    Some(title.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase())
}

/// A required section as found: where its heading is and its visible lines.
#[derive(Debug, Clone)]
struct Section {
    heading_line: usize,
    lines: Vec<(usize, String)>,
}

/// Each required section's lines, up to the next heading of any level.
fn split_sections(lines: &[(usize, Visible)], problems: &mut Vec<Problem>) -> [Option<Section>; 3] {
    let mut found: [Option<Section>; 3] = [None, None, None];
    let mut current: Option<usize> = None;
    for (line, v) in lines {
        match v {
            Visible::Heading(title) => {
                current = SECTIONS.iter().position(|h| h.trim_start_matches('#').trim().eq_ignore_ascii_case(title));
                if let Some(i) = current {
                    if let Some(first) = &found[i] {
                        problems.push(Problem::DuplicateSection {
                            heading: SECTIONS[i],
                            line: *line,
                            first_line: first.heading_line,
                        });
                        current = None;
                    } else {
                        found[i] = Some(Section { heading_line: *line, lines: Vec::new() });
                    }
                }
            }
            Visible::Text(text) => {
                if let Some(s) = current.and_then(|i| found[i].as_mut()) {
                    s.lines.push((*line, text.clone()));
                }
            }
        }
    }
    found
}

/// A section's text, or the problem that it is missing or empty.
fn prose(heading: &'static str, section: Option<&Section>, problems: &mut Vec<Problem>) -> Option<String> {
    let Some(section) = section else {
        problems.push(Problem::MissingSection { heading });
        return None;
    };
    let text = section.lines.iter().map(|(_, t)| t.trim_end()).collect::<Vec<_>>().join("\n");
    let text = text.trim();
    if text.is_empty() {
        problems.push(Problem::EmptySection { heading, line: section.heading_line });
        return None;
    }
    Some(text.to_owned())
}

/// The `key: value` lines of `### Success threshold`; every other non-blank line is a problem.
fn thresholds(lines: &[(usize, String)], problems: &mut Vec<Problem>) -> Vec<PreThreshold> {
    let mut out = Vec::new();
    let mut first: BTreeMap<Key, usize> = BTreeMap::new();
    for (line, text) in lines {
        let line = *line;
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let item = ["- ", "* ", "+ "].iter().find_map(|b| text.strip_prefix(b)).map_or(text, str::trim_start);
        let Some((name, value)) = item.split_once(':').filter(|(k, _)| is_key_like(k.trim())) else {
            problems.push(Problem::NotAKeyValue { line, text: text.to_owned() });
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name == CRITICAL_TAGS {
            problems.push(Problem::NotSettable { key: name.to_owned(), line });
            continue;
        }
        let Some(key) = Key::parse(name) else {
            let did_you_mean = did_you_mean(&name.to_lowercase(), &key_names());
            problems.push(Problem::UnknownKey { key: name.to_owned(), line, did_you_mean });
            continue;
        };
        if let Some(&first_line) = first.get(&key) {
            problems.push(Problem::DuplicateKey { key, line, first_line });
            continue;
        }
        first.insert(key, line);
        match key.parse_value(value) {
            Ok(v) => out.push(PreThreshold { key, value: v, line }),
            Err(reason) => problems.push(Problem::BadValue { key, value: value.to_owned(), line, reason }),
        }
    }
    out
}

/// Whether text before a `:` could be meant as a key (not a sentence that happens to hold one).
fn is_key_like(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(body: &str) -> Vec<Problem> {
        parse(Some(body)).expect_err("the body should have problems")
    }

    fn body_with_thresholds(lines: &str) -> String {
        format!("### What changed\nA prompt edit.\n### Expected to move\nPass rate up.\n### Success threshold\n{lines}")
    }

    #[test]
    fn the_spec_example_parses() {
        let p = parse(Some(TEMPLATE)).expect("the template is valid");
        assert_eq!(p.what_changed, "Tightened the refund prompt's policy section.");
        assert_eq!(p.expected_to_move, "refund-agent: pass rate up on refund golden set; cost flat.");
        assert_eq!(thresholds_of(&p), [(Key::MaxRegressionRate, 0.01), (Key::MinPassRate, 0.95)]);
        assert_eq!(p.thresholds.iter().map(|t| t.line).collect::<Vec<_>>(), [6, 7]);
    }

    #[test]
    fn the_template_has_exactly_the_three_headings() {
        let headings: Vec<&str> = TEMPLATE.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(headings, SECTIONS);
    }

    #[test]
    fn a_missing_section_is_named() {
        let p = problems("### What changed\nA prompt edit.\n### Success threshold\nmin_pass_rate: 0.9\n");
        assert_eq!(p, [Problem::MissingSection { heading: EXPECTED_TO_MOVE }]);
        assert_eq!(p[0].to_string(), "missing section `### Expected to move`");
    }

    #[test]
    fn a_section_with_only_whitespace_is_empty() {
        let p = problems(
            "### What changed\n   \n\n### Expected to move\nPass rate up.\n### Success threshold\nmin_pass_rate: 0.9",
        );
        assert_eq!(p, [Problem::EmptySection { heading: WHAT_CHANGED, line: 1 }]);
    }

    #[test]
    fn a_template_left_in_comments_is_empty() {
        let body = "### What changed\n<!-- describe the change -->\n### Expected to move\n<!--\nwhich metrics,\nwhich way\n-->\n### Success threshold\n<!-- max_regression_rate: 1% -->\n";
        let p = problems(body);
        assert_eq!(
            p,
            [
                Problem::EmptySection { heading: WHAT_CHANGED, line: 1 },
                Problem::EmptySection { heading: EXPECTED_TO_MOVE, line: 3 },
                Problem::EmptySection { heading: SUCCESS_THRESHOLD, line: 8 },
            ]
        );
    }

    #[test]
    fn text_around_an_inline_comment_counts() {
        let body =
            body_with_thresholds("min_pass_rate: 0.9 <!-- was 0.8 -->").replace("A prompt edit.", "A <!-- x --> b");
        let p = parse(Some(&body)).expect("valid");
        assert_eq!(p.what_changed, "A  b");
        assert_eq!(thresholds_of(&p), [(Key::MinPassRate, 0.9)]);
    }

    #[test]
    fn headings_inside_a_comment_do_not_count() {
        let body = format!("<!--\n{TEMPLATE}-->\n");
        assert_eq!(problems(&body).len(), 3);
        assert!(problems(&body).iter().all(|p| matches!(p, Problem::MissingSection { .. })));
    }

    #[test]
    fn an_unknown_key_gets_a_suggestion() {
        let p = problems(&body_with_thresholds("max_regresion_rate: 1%"));
        assert_eq!(
            p,
            [Problem::UnknownKey {
                key: "max_regresion_rate".into(),
                line: 6,
                did_you_mean: Some("max_regression_rate")
            }]
        );
        assert_eq!(p[0].to_string(), "line 6: unknown key `max_regresion_rate` (did you mean `max_regression_rate`?)");
    }

    #[test]
    fn an_unknown_key_far_from_any_lists_the_known_ones() {
        let p = problems(&body_with_thresholds("vibes: 10"));
        assert!(matches!(&p[..], [Problem::UnknownKey { did_you_mean: None, .. }]));
        assert!(p[0].to_string().contains("known keys: `max_regression_rate`, `min_pass_rate`"));
    }

    #[test]
    fn critical_tags_cannot_be_pre_registered() {
        let p = problems(&body_with_thresholds("critical_tags: [critical]"));
        assert_eq!(p, [Problem::NotSettable { key: "critical_tags".into(), line: 6 }]);
        assert!(p[0].to_string().contains("cannot be set by pre-registration"));
    }

    #[test]
    fn a_bad_value_gives_the_reason() {
        let p = problems(&body_with_thresholds("min_pass_rate: 120%"));
        let [Problem::BadValue { key: Key::MinPassRate, value, line: 6, reason }] = &p[..] else {
            panic!("expected one bad value, got {p:?}")
        };
        assert_eq!(value, "120%");
        assert_eq!(p[0].to_string(), format!("line 6: {reason}"));
    }

    #[test]
    fn a_duplicate_key_names_the_first_line() {
        let p = problems(&body_with_thresholds("min_pass_rate: 0.9\nmin_pass_rate: 0.95"));
        assert_eq!(p, [Problem::DuplicateKey { key: Key::MinPassRate, line: 7, first_line: 6 }]);
        assert_eq!(p[0].to_string(), "line 7: `min_pass_rate` is set again (first at line 6)");
    }

    #[test]
    fn a_line_that_is_not_key_value_is_reported() {
        let p = problems(&body_with_thresholds("Keep regressions low: please"));
        assert_eq!(p, [Problem::NotAKeyValue { line: 6, text: "Keep regressions low: please".into() }]);
    }

    #[test]
    fn bullets_and_blank_lines_are_tolerated_in_thresholds() {
        let p = parse(Some(&body_with_thresholds("\n- max_regression_rate: 0.01\n\n* min_fix_rate: 10%\n")))
            .expect("valid");
        assert_eq!(thresholds_of(&p), [(Key::MaxRegressionRate, 0.01), (Key::MinFixRate, 0.1)]);
    }

    #[test]
    fn a_crlf_body_parses_with_its_lines() {
        let p = parse(Some(&TEMPLATE.replace('\n', "\r\n"))).expect("valid");
        assert_eq!(p.what_changed, "Tightened the refund prompt's policy section.");
        assert_eq!(p.thresholds[1], PreThreshold { key: Key::MinPassRate, value: 0.95, line: 7 });
    }

    #[test]
    fn no_body_is_one_problem() {
        assert_eq!(parse(None), Err(vec![Problem::NoBody]));
        assert_eq!(parse(Some(" \r\n ")), Err(vec![Problem::NoBody]));
    }

    #[test]
    fn a_heading_inside_a_code_fence_is_ignored() {
        let body = "### What changed\nA prompt edit.\n```md\n### Expected to move\nnot this\n```\n### Success threshold\nmin_pass_rate: 0.9";
        assert_eq!(problems(body), [Problem::MissingSection { heading: EXPECTED_TO_MOVE }]);
    }

    #[test]
    fn a_section_with_only_a_code_block_is_empty() {
        let body = body_with_thresholds("~~~\nmin_pass_rate: 0.9\n~~~");
        assert_eq!(problems(&body), [Problem::EmptySection { heading: SUCCESS_THRESHOLD, line: 5 }]);
    }

    #[test]
    fn headings_of_any_level_and_case_match() {
        let body = "# WHAT CHANGED:\nA prompt edit.\n###### expected to move  \nPass rate up.\n## Success Threshold ##\nmin_pass_rate: 90%";
        let p = parse(Some(body)).expect("valid");
        assert_eq!(p.expected_to_move, "Pass rate up.");
        assert_eq!(thresholds_of(&p), [(Key::MinPassRate, 0.9)]);
    }

    #[test]
    fn a_section_ends_at_the_next_heading_of_any_level() {
        let body = format!("{TEMPLATE}#### Notes\nnot a threshold\n");
        assert_eq!(parse(Some(&body)).map(|p| p.thresholds.len()), Ok(2));
    }

    #[test]
    fn a_repeated_section_is_reported() {
        let body = format!("{TEMPLATE}### What changed\nagain\n");
        assert_eq!(problems(&body), [Problem::DuplicateSection { heading: WHAT_CHANGED, line: 8, first_line: 1 }]);
    }

    #[test]
    fn several_problems_are_reported_together_in_line_order() {
        let body = "### What changed\n\n### Success threshold\nmax_regresion_rate: 1%\nmin_pass_rate: lots\nhello\n";
        let p = problems(body);
        let lines: Vec<Option<usize>> = p.iter().map(Problem::line).collect();
        assert_eq!(lines, [None, Some(1), Some(4), Some(5), Some(6)]);
        assert!(matches!(p[0], Problem::MissingSection { heading: EXPECTED_TO_MOVE }));
        assert!(matches!(p[1], Problem::EmptySection { heading: WHAT_CHANGED, .. }));
        assert!(matches!(p[2], Problem::UnknownKey { .. }));
        assert!(matches!(p[3], Problem::BadValue { .. }));
        assert!(matches!(p[4], Problem::NotAKeyValue { .. }));
    }
}
