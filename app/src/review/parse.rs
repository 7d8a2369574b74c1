//! Reviewer commands in pull-request comments (SPEC "Reviewer commands"): [`parse`] turns a
//! comment body into the `/evalgate …` commands it gives, in order, plus the errors to tell the
//! commenter about; [`new_commands`] picks out what an edit added. Pure: no I/O and no
//! permission checks (the caller checks write/maintain/admin, ignores the App's own comments and
//! records every command in the audit trail).
//!
//! Markdown-aware like bors's parser, but line by line (GitHub renders every line break in a
//! comment). A command is a line that starts, after at most 3 spaces, with `/evalgate` followed
//! by whitespace or the end of the line (`/evalgatex`, `/Evalgate` and mid-sentence mentions are
//! not commands). Never commands:
//!
//! - lines of fenced code blocks (```` ``` ```` or `~~~`, any info string, also opened after a
//!   list marker; closed by a fence of the same character at least as long; an unclosed fence
//!   runs to the end of the comment);
//! - indented code: 4 or more columns of leading whitespace, or any tab in it;
//! - block quotes: lines starting with `>` (so `> > …` too). A line without `>` after a quote
//!   counts again: GitHub's "Quote reply" prefixes every quoted line, and what follows is the
//!   replier's own text;
//! - HTML comments `<!-- … -->`, over any number of lines, wherever they open outside code
//!   (inline code spans on the line are skipped). A comment inside a command line is removed
//!   from its arguments.
//!
//! Subcommand words match exactly (lowercase); an unknown one gets a did-you-mean when
//! `strsim::jaro_winkler` of its lowercase form and a name is at least 0.8. Every command line is
//! parsed on its own, so an error never stops later lines. Limits: only the first 65,536
//! characters of a body are read (a line cut by that limit is dropped whole, so a cut never
//! shortens an override reason or a case id); at most 10 commands are returned per comment, and
//! every further valid command is reported by one [`ParseError::BadArgument`] on the line of the
//! first one left out, `command` naming it, reason "too many commands …" (erroneous command lines
//! past the limit still get their own errors, they run nothing).
//!
//! Error texts are ready to post back: user text in them is shortened to 64 characters and put
//! in a code span it cannot break out of, so a reply never pings a `@mention` from a comment.

use std::fmt;

/// One reviewer command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/evalgate rerun`
    Rerun,
    /// `/evalgate run`: starts the gate on a fork PR.
    Run,
    /// `/evalgate override <reason>`: the rest of the line, trimmed, 1 to 1,000 characters.
    Override { reason: String },
    /// `/evalgate explain <case-id>`: one token of `[A-Za-z0-9._:-]{1,128}`.
    Explain { case_id: String },
    /// `/evalgate accept-thresholds`
    AcceptThresholds,
    /// `/evalgate approve-golden`
    ApproveGolden,
}

impl Command {
    /// The subcommand word: "rerun", "run", "override", "explain", "accept-thresholds",
    /// "approve-golden".
    pub fn name(&self) -> &'static str {
        match self {
            Command::Rerun => "rerun",
            Command::Run => "run",
            Command::Override { .. } => "override",
            Command::Explain { .. } => "explain",
            Command::AcceptThresholds => "accept-thresholds",
            Command::ApproveGolden => "approve-golden",
        }
    }
}

/// What is wrong with one `/evalgate` line; `line` is 1-based. `Display` gives the one-line text
/// to post back, starting "line N: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// `word` is the subcommand as written (shortened to 64 characters); `did_you_mean` one of
    /// the six names.
    UnknownCommand { line: usize, word: String, did_you_mean: Option<&'static str> },
    /// `override` without a reason ("a reason"), `explain` without a case id ("a case id").
    MissingArgument { line: usize, command: &'static str, what: &'static str },
    /// A bad case id, a reason over 1,000 characters, an argument to a command that takes none,
    /// or a valid command past the 10 a comment may give ("too many commands …").
    BadArgument { line: usize, command: &'static str, reason: String },
    /// A bare `/evalgate`.
    Empty { line: usize },
}

/// The commands of one comment body, with their 1-based line numbers, and the errors, both in
/// line order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub commands: Vec<(usize, Command)>,
    pub errors: Vec<ParseError>,
}

const PREFIX: &str = "/evalgate";
const NAMES: [&str; 6] = ["rerun", "run", "override", "explain", "accept-thresholds", "approve-golden"];
const USAGE: &str = "`/evalgate rerun`, `/evalgate run`, `/evalgate override <reason>`, \
                     `/evalgate explain <case-id>`, `/evalgate accept-thresholds`, `/evalgate approve-golden`";
const MAX_BODY_CHARS: usize = 65_536;
const MAX_COMMANDS: usize = 10;
const MAX_REASON_CHARS: usize = 1_000;
const MAX_CASE_ID_CHARS: usize = 128;
/// User text quoted in an error is cut to this many characters.
const MAX_ECHO_CHARS: usize = 64;
const MIN_SIMILARITY: f64 = 0.8;

/// Parses a comment body (LF or CRLF) into its commands and errors. Never fails.
pub fn parse(body: &str) -> Parsed {
    let mut out = Parsed::default();
    // The first command left out by the limit: (its index in `errors`, how many more followed).
    let mut left_out: Option<(usize, usize)> = None;
    for (line, args) in command_lines(truncate(body)) {
        match command(line, &args) {
            Ok(c) => match left_out.as_mut() {
                Some((_, more)) => *more += 1,
                None if out.commands.len() == MAX_COMMANDS => {
                    left_out = Some((out.errors.len(), 0));
                    out.errors.push(ParseError::BadArgument { line, command: c.name(), reason: String::new() });
                }
                None => out.commands.push((line, c)),
            },
            Err(e) => out.errors.push(e),
        }
    }
    if let Some((i, more)) = left_out {
        if let Some(ParseError::BadArgument { reason, .. }) = out.errors.get_mut(i) {
            let which = match more {
                0 => "this one was".to_owned(),
                1 => "this one and 1 later one were".to_owned(),
                n => format!("this one and {n} later ones were"),
            };
            *reason = format!("too many commands: at most {MAX_COMMANDS} run per comment, so {which} not run");
        }
    }
    out
}

/// The commands of `new` that `old` does not have, for an edited comment: both are parsed, and
/// each command of `new` in order is matched against an equal one of `old` not matched yet (a
/// multiset, line numbers ignored; an override with a changed reason is a new command). Line
/// numbers returned are those in `new`.
pub fn new_commands(old: &str, new: &str) -> Vec<(usize, Command)> {
    let mut unmatched: Vec<Command> = parse(old).commands.into_iter().map(|(_, c)| c).collect();
    parse(new)
        .commands
        .into_iter()
        .filter(|(_, c)| match unmatched.iter().position(|o| o == c) {
            Some(i) => {
                unmatched.swap_remove(i);
                false
            }
            None => true,
        })
        .collect()
}

/// The body up to its first `MAX_BODY_CHARS` characters, without a line the cut falls inside.
fn truncate(body: &str) -> &str {
    let body = body.strip_prefix('\u{feff}').unwrap_or(body);
    let Some((cut, _)) = body.char_indices().nth(MAX_BODY_CHARS) else {
        return body;
    };
    let head = &body[..cut];
    if body[cut..].starts_with('\n') { head } else { head.rfind('\n').map_or("", |i| &head[..i]) }
}

/// An open fenced code block.
struct Fence {
    ch: u8,
    len: usize,
    /// The column its fence characters start at.
    col: usize,
}

/// Every line that is a command, with its 1-based number and the text after `/evalgate` (HTML
/// comments removed).
fn command_lines(body: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut fence: Option<Fence> = None;
    let mut in_comment = false;
    for (i, line) in body.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if in_comment {
            strip_comments(line, &mut in_comment);
            continue;
        }
        if let Some(f) = &fence {
            if closes(line, f) {
                fence = None;
            }
            continue;
        }
        if let Some(f) = opens_fence(line) {
            fence = Some(f);
            continue;
        }
        let (col, rest) = indent(line, 0);
        if col > 3 {
            continue; // indented code
        }
        match rest.strip_prefix(PREFIX) {
            Some(args) if args.chars().next().is_none_or(char::is_whitespace) => {
                found.push((i + 1, strip_comments(args, &mut in_comment)));
            }
            // Quoted lines and any other text: only an HTML comment opening in them matters.
            _ => {
                strip_comments(rest, &mut in_comment);
            }
        }
    }
    found
}

/// The column after the leading spaces and tabs of `text` (tabs stop every 4 columns), counting
/// from `col`, and the text after them.
fn indent(text: &str, mut col: usize) -> (usize, &str) {
    let ws = text.bytes().take_while(|b| matches!(b, b' ' | b'\t')).count();
    for b in text.bytes().take(ws) {
        col = if b == b'\t' { (col / 4 + 1) * 4 } else { col + 1 };
    }
    (col, &text[ws..])
}

fn run_len(bytes: &[u8], from: usize, ch: u8) -> usize {
    bytes[from..].iter().take_while(|&&b| b == ch).count()
}

/// The width of a list marker (`-`, `*`, `+`, or 1 to 9 digits and `.` or `)`) at the start of
/// `text`, if one is there.
fn list_marker(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    match b.first()? {
        b'-' | b'*' | b'+' => Some(1),
        _ => {
            let digits = b.iter().take_while(|b| b.is_ascii_digit()).count();
            ((1..=9).contains(&digits) && matches!(b.get(digits), Some(b'.' | b')'))).then_some(digits + 1)
        }
    }
}

/// A fence opening on this line: at most 3 columns of indentation, then list markers (each
/// followed by 1 to 4 columns of space), then 3 or more backticks or tildes; a backtick fence's
/// info string holds no backtick.
fn opens_fence(line: &str) -> Option<Fence> {
    let (mut col, mut rest) = indent(line, 0);
    if col > 3 {
        return None;
    }
    while let Some(w) = list_marker(rest) {
        let (after, text) = indent(&rest[w..], col + w);
        match after - (col + w) {
            0 => break,
            1..=4 => (col, rest) = (after, text),
            _ => return None, // indented code inside the list item
        }
    }
    let ch = *rest.as_bytes().first()?;
    if ch != b'`' && ch != b'~' {
        return None;
    }
    let len = run_len(rest.as_bytes(), 0, ch);
    if len < 3 || (ch == b'`' && rest[len..].contains('`')) {
        return None;
    }
    Some(Fence { ch, len, col })
}

/// Whether this line closes the fence: the same character at least as many times, nothing after
/// but whitespace, indented at most 3 columns more than the opening fence.
fn closes(line: &str, fence: &Fence) -> bool {
    let (col, rest) = indent(line, 0);
    let len = run_len(rest.as_bytes(), 0, fence.ch);
    col <= fence.col + 3 && len >= fence.len && rest[len..].trim().is_empty()
}

/// `text` without its HTML comments, given whether a comment is open where it starts; leaves
/// `in_comment` telling whether one is open where it ends. Code spans (`` `…` ``, closed on the
/// same line) are kept whole, so a `<!--` inside one opens nothing. `<!-->` and `<!--->` are
/// complete comments, as in CommonMark.
fn strip_comments(text: &str, in_comment: &mut bool) -> String {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut visible_from = 0;
    let mut i = 0;
    while i < b.len() {
        if *in_comment {
            match text[i..].find("-->") {
                Some(end) => {
                    i += end + 3;
                    visible_from = i;
                    *in_comment = false;
                }
                None => return out,
            }
            continue;
        }
        match b[i] {
            b'`' => {
                let n = run_len(b, i, b'`');
                i = closing_backticks(b, i + n, n).unwrap_or(i + n);
            }
            b'<' if text[i..].starts_with("<!--") => {
                out.push_str(&text[visible_from..i]);
                let after = &text[i + 4..];
                i += 4 + if after.starts_with('>') {
                    1
                } else if after.starts_with("->") {
                    2
                } else {
                    *in_comment = true;
                    0
                };
                visible_from = i;
            }
            _ => i += 1,
        }
    }
    if !*in_comment {
        out.push_str(&text[visible_from..]);
    }
    out
}

/// The end of the first run of exactly `n` backticks at or after `from`.
fn closing_backticks(b: &[u8], mut from: usize, n: usize) -> Option<usize> {
    while from < b.len() {
        if b[from] == b'`' {
            let m = run_len(b, from, b'`');
            if m == n {
                return Some(from + m);
            }
            from += m;
        } else {
            from += 1;
        }
    }
    None
}

/// One command line, from the text after `/evalgate`.
fn command(line: usize, args: &str) -> Result<Command, ParseError> {
    let args = args.trim();
    if args.is_empty() {
        return Err(ParseError::Empty { line });
    }
    let (word, rest) = match args.find(char::is_whitespace) {
        Some(i) => (&args[..i], args[i..].trim()),
        None => (args, ""),
    };
    let no_argument = |command: &'static str, c: Command| {
        if rest.is_empty() {
            Ok(c)
        } else {
            Err(ParseError::BadArgument { line, command, reason: format!("takes no argument, got {}", code(rest)) })
        }
    };
    match word {
        "rerun" => no_argument("rerun", Command::Rerun),
        "run" => no_argument("run", Command::Run),
        "accept-thresholds" => no_argument("accept-thresholds", Command::AcceptThresholds),
        "approve-golden" => no_argument("approve-golden", Command::ApproveGolden),
        "override" => override_reason(line, rest),
        "explain" => explain_case(line, rest),
        _ => Err(ParseError::UnknownCommand { line, word: shorten(word), did_you_mean: suggest(word) }),
    }
}

fn override_reason(line: usize, reason: &str) -> Result<Command, ParseError> {
    let command = "override";
    if reason.is_empty() {
        return Err(ParseError::MissingArgument { line, command, what: "a reason" });
    }
    let n = reason.chars().count();
    if n > MAX_REASON_CHARS {
        let reason = format!("the reason is {n} characters long; at most {MAX_REASON_CHARS} are allowed");
        return Err(ParseError::BadArgument { line, command, reason });
    }
    Ok(Command::Override { reason: reason.to_owned() })
}

fn explain_case(line: usize, rest: &str) -> Result<Command, ParseError> {
    let command = "explain";
    let mut words = rest.split_whitespace();
    let Some(id) = words.next() else {
        return Err(ParseError::MissingArgument { line, command, what: "a case id" });
    };
    let bad = |reason: String| Err(ParseError::BadArgument { line, command, reason });
    if let Some(extra) = words.next() {
        return bad(format!("takes one case id, got {} after {}", code(extra), code(id)));
    }
    let n = id.chars().count();
    if n > MAX_CASE_ID_CHARS {
        return bad(format!("a case id is at most {MAX_CASE_ID_CHARS} characters, got {n}"));
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')) {
        return bad(format!("{} is not a case id (letters, digits, `.`, `_`, `:` and `-`)", code(id)));
    }
    Ok(Command::Explain { case_id: id.to_owned() })
}

/// The command name most like `word` (compared in lowercase), if any is close enough.
fn suggest(word: &str) -> Option<&'static str> {
    if word.chars().count() > MAX_ECHO_CHARS {
        return None;
    }
    let word = word.to_lowercase();
    let mut best: Option<(f64, &'static str)> = None;
    for name in NAMES {
        let score = strsim::jaro_winkler(&word, name);
        if score >= MIN_SIMILARITY && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, name));
        }
    }
    best.map(|(_, name)| name)
}

/// `text` cut to `MAX_ECHO_CHARS` characters, with `…` when cut.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// `text`, shortened, as a code span.
fn code(text: &str) -> String {
    code_span(&shorten(text))
}

/// `text` as a markdown code span it cannot close early: delimited by one backtick more than its
/// longest run of them, padded with spaces when it starts or ends with one.
fn code_span(text: &str) -> String {
    let b = text.as_bytes();
    let mut longest = 0;
    let mut i = 0;
    while i < b.len() {
        let n = run_len(b, i, b'`');
        longest = longest.max(n);
        i += n.max(1);
    }
    let ticks = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') { " " } else { "" };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

fn usage(command: &str) -> String {
    match command {
        "override" => "`/evalgate override <reason>`".to_owned(),
        "explain" => "`/evalgate explain <case-id>`".to_owned(),
        _ => format!("`/evalgate {command}`"),
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::UnknownCommand { line, word, did_you_mean: Some(name) } => {
                write!(
                    f,
                    "line {line}: unknown command {}; did you mean `{PREFIX} {name}`?",
                    code_span(&format!("{PREFIX} {word}"))
                )
            }
            ParseError::UnknownCommand { line, word, did_you_mean: None } => {
                write!(
                    f,
                    "line {line}: unknown command {}; the commands are {USAGE}",
                    code_span(&format!("{PREFIX} {word}"))
                )
            }
            ParseError::MissingArgument { line, command, what } => {
                write!(f, "line {line}: `{PREFIX} {command}` needs {what}: {}", usage(command))
            }
            ParseError::BadArgument { line, command, reason } => {
                write!(f, "line {line}: `{PREFIX} {command}`: {reason}")
            }
            ParseError::Empty { line } => {
                write!(f, "line {line}: `{PREFIX}` needs a command; the commands are {USAGE}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(body: &str) -> Vec<Command> {
        let p = parse(body);
        assert_eq!(p.errors, [], "no errors expected in {body:?}");
        p.commands.into_iter().map(|(_, c)| c).collect()
    }

    fn one_error(body: &str) -> ParseError {
        let p = parse(body);
        assert_eq!(p.commands, [], "no commands expected in {body:?}");
        assert_eq!(p.errors.len(), 1, "one error expected in {body:?}: {:?}", p.errors);
        p.errors.into_iter().next().expect("one error")
    }

    fn overriding(reason: &str) -> Command {
        Command::Override { reason: reason.to_owned() }
    }

    fn explaining(case_id: &str) -> Command {
        Command::Explain { case_id: case_id.to_owned() }
    }

    fn nothing(body: &str) {
        assert_eq!(parse(body), Parsed::default(), "nothing expected in {body:?}");
    }

    #[test]
    fn rerun_parses() {
        assert_eq!(parse("/evalgate rerun").commands, [(1, Command::Rerun)]);
    }

    #[test]
    fn run_parses() {
        assert_eq!(commands("/evalgate run"), [Command::Run]);
    }

    #[test]
    fn override_parses_with_its_reason() {
        assert_eq!(
            commands("/evalgate override judge outage, rerun tomorrow"),
            [overriding("judge outage, rerun tomorrow")]
        );
    }

    #[test]
    fn explain_parses_with_its_case_id() {
        assert_eq!(commands("/evalgate explain refund-42"), [explaining("refund-42")]);
    }

    #[test]
    fn accept_thresholds_parses() {
        assert_eq!(commands("/evalgate accept-thresholds"), [Command::AcceptThresholds]);
    }

    #[test]
    fn approve_golden_parses() {
        assert_eq!(commands("/evalgate approve-golden"), [Command::ApproveGolden]);
    }

    #[test]
    fn each_command_is_named_by_its_word() {
        let all = [
            Command::Rerun,
            Command::Run,
            overriding("r"),
            explaining("c"),
            Command::AcceptThresholds,
            Command::ApproveGolden,
        ];
        assert_eq!(all.iter().map(Command::name).collect::<Vec<_>>(), NAMES);
    }

    #[test]
    fn override_reason_is_kept_verbatim_with_its_ends_trimmed() {
        assert_eq!(
            commands("/evalgate override   flaky  judge:\tsee #12 `x`  \t"),
            [overriding("flaky  judge:\tsee #12 `x`")]
        );
    }

    #[test]
    fn override_without_a_reason_is_a_missing_argument() {
        let e = one_error("/evalgate override   ");
        assert_eq!(e, ParseError::MissingArgument { line: 1, command: "override", what: "a reason" });
        assert_eq!(e.to_string(), "line 1: `/evalgate override` needs a reason: `/evalgate override <reason>`");
    }

    #[test]
    fn override_reason_of_1000_chars_is_kept_and_1001_is_a_bad_argument() {
        let ok = "é".repeat(1_000);
        assert_eq!(commands(&format!("/evalgate override {ok}")), [overriding(&ok)]);
        let e = one_error(&format!("/evalgate override {ok}x"));
        assert!(matches!(e, ParseError::BadArgument { line: 1, command: "override", .. }), "{e:?}");
        assert!(e.to_string().contains("1001 characters"), "{e}");
    }

    #[test]
    fn explain_without_a_case_id_is_a_missing_argument() {
        let e = one_error("/evalgate explain");
        assert_eq!(e, ParseError::MissingArgument { line: 1, command: "explain", what: "a case id" });
    }

    #[test]
    fn explain_with_a_bad_case_id_is_a_bad_argument() {
        let e = one_error("/evalgate explain refund/42");
        assert!(matches!(e, ParseError::BadArgument { line: 1, command: "explain", .. }), "{e:?}");
        assert!(e.to_string().contains("`refund/42` is not a case id"), "{e}");
    }

    #[test]
    fn explain_with_two_words_is_a_bad_argument() {
        let e = one_error("/evalgate explain refund-42 please");
        assert!(matches!(e, ParseError::BadArgument { line: 1, command: "explain", .. }), "{e:?}");
        assert!(e.to_string().contains("`please` after `refund-42`"), "{e}");
    }

    #[test]
    fn explain_takes_every_case_id_character_up_to_128() {
        let id = format!("Aa0._:-{}", "z".repeat(121));
        assert_eq!(commands(&format!("/evalgate explain {id}")), [explaining(&id)]);
        let e = one_error(&format!("/evalgate explain {id}z"));
        assert!(matches!(e, ParseError::BadArgument { command: "explain", .. }), "{e:?}");
    }

    #[test]
    fn an_argument_to_a_command_that_takes_none_is_a_bad_argument() {
        for name in ["rerun", "run", "accept-thresholds", "approve-golden"] {
            let e = one_error(&format!("/evalgate {name} now please"));
            assert_eq!(
                e,
                ParseError::BadArgument {
                    line: 1,
                    command: name,
                    reason: "takes no argument, got `now please`".to_owned()
                }
            );
        }
    }

    #[test]
    fn unknown_command_near_a_name_suggests_it() {
        let e = one_error("thanks!\n\n/evalgate rerum");
        assert_eq!(e, ParseError::UnknownCommand { line: 3, word: "rerum".to_owned(), did_you_mean: Some("rerun") });
        assert_eq!(e.to_string(), "line 3: unknown command `/evalgate rerum`; did you mean `/evalgate rerun`?");
    }

    #[test]
    fn unknown_command_far_from_every_name_lists_the_commands() {
        let e = one_error("/evalgate deploy");
        assert_eq!(e, ParseError::UnknownCommand { line: 1, word: "deploy".to_owned(), did_you_mean: None });
        assert_eq!(e.to_string(), format!("line 1: unknown command `/evalgate deploy`; the commands are {USAGE}"));
    }

    #[test]
    fn subcommand_words_match_in_lowercase_only_but_suggest_in_any_case() {
        let e = one_error("/evalgate Approve-Golden");
        assert_eq!(
            e,
            ParseError::UnknownCommand {
                line: 1,
                word: "Approve-Golden".to_owned(),
                did_you_mean: Some("approve-golden")
            }
        );
    }

    #[test]
    fn bare_evalgate_is_empty() {
        assert_eq!(one_error("  /evalgate  "), ParseError::Empty { line: 1 });
    }

    #[test]
    fn backtick_fence_with_an_info_string_is_ignored() {
        nothing("Run this:\n```text\n/evalgate override because\n```");
    }

    #[test]
    fn tilde_fence_is_ignored() {
        nothing("~~~\n/evalgate rerun\n~~~");
    }

    #[test]
    fn longer_fence_is_closed_only_by_one_as_long() {
        let body = "````md\n```\n/evalgate rerun\n```\n~~~~\n/evalgate run\n````\n/evalgate approve-golden";
        assert_eq!(parse(body).commands, [(8, Command::ApproveGolden)]);
    }

    #[test]
    fn unclosed_fence_hides_the_rest_of_the_comment() {
        nothing("```\n/evalgate rerun");
    }

    #[test]
    fn fence_in_a_list_item_is_ignored() {
        let body =
            "1. paste this:\n   ```\n/evalgate rerun\n   ```\n- ~~~\n  /evalgate run\n  ~~~\n/evalgate approve-golden";
        assert_eq!(parse(body).commands, [(8, Command::ApproveGolden)]);
    }

    #[test]
    fn inline_backticks_do_not_open_a_fence() {
        assert_eq!(commands("```/evalgate run```\n/evalgate rerun"), [Command::Rerun]);
    }

    #[test]
    fn indented_code_is_ignored() {
        nothing("example:\n\n    /evalgate rerun\n\t/evalgate run\n  \t/evalgate approve-golden");
    }

    #[test]
    fn up_to_three_leading_spaces_still_make_a_command() {
        assert_eq!(commands("   /evalgate rerun\n /evalgate run"), [Command::Rerun, Command::Run]);
    }

    #[test]
    fn quoted_command_is_ignored() {
        let body = "> /evalgate override flaky judge\n\n>> /evalgate rerun\n > > /evalgate run\n\nI disagree with this override.";
        nothing(body);
    }

    #[test]
    fn own_line_after_a_quote_is_a_command() {
        assert_eq!(parse("> /evalgate override flaky judge\n/evalgate rerun").commands, [(2, Command::Rerun)]);
    }

    #[test]
    fn html_comment_is_ignored() {
        nothing("<!-- /evalgate rerun -->\n<!--\nTemplate: write\n/evalgate override <reason>\n-->\nthanks");
    }

    #[test]
    fn html_comment_opened_mid_line_hides_the_next_lines() {
        assert_eq!(
            parse("Looks good <!-- hidden\n/evalgate run\n--> ok\n/evalgate rerun").commands,
            [(4, Command::Rerun)]
        );
    }

    #[test]
    fn html_comment_inside_a_command_line_is_removed() {
        assert_eq!(commands("/evalgate override flaky <!-- internal note --> judge"), [overriding("flaky  judge")]);
        assert_eq!(commands("/evalgate rerun <!--\n/evalgate run\n-->"), [Command::Rerun]);
    }

    #[test]
    fn comment_marker_in_inline_code_opens_no_comment() {
        assert_eq!(commands("use `<!--` to hide text\n/evalgate rerun"), [Command::Rerun]);
    }

    #[test]
    fn empty_html_comments_close_themselves() {
        assert_eq!(commands("<!--> and <!--->\n/evalgate rerun"), [Command::Rerun]);
    }

    #[test]
    fn inline_mention_is_not_a_command() {
        nothing("please run /evalgate rerun when CI is green\n`/evalgate run`\n- /evalgate approve-golden");
    }

    #[test]
    fn evalgatex_is_not_a_command() {
        nothing("/evalgatex rerun\n/evalgate-rerun\n/Evalgate rerun");
    }

    #[test]
    fn several_commands_are_all_returned_in_order() {
        let body = "/evalgate accept-thresholds\nwhy:\n/evalgate explain case:7\n\n/evalgate rerun\n/evalgate rerun";
        assert_eq!(
            parse(body).commands,
            [(1, Command::AcceptThresholds), (3, explaining("case:7")), (5, Command::Rerun), (6, Command::Rerun)]
        );
    }

    #[test]
    fn errors_do_not_stop_later_lines() {
        let p = parse("/evalgate rerum\n/evalgate override\n/evalgate run");
        assert_eq!(p.commands, [(3, Command::Run)]);
        assert_eq!(p.errors.iter().map(error_line).collect::<Vec<_>>(), [1, 2]);
    }

    fn error_line(e: &ParseError) -> usize {
        match e {
            ParseError::UnknownCommand { line, .. }
            | ParseError::MissingArgument { line, .. }
            | ParseError::BadArgument { line, .. }
            | ParseError::Empty { line } => *line,
        }
    }

    #[test]
    fn crlf_body_parses_like_lf() {
        let body = "hi\r\n```\r\n/evalgate run\r\n```\r\n/evalgate override  two  words \r\n/evalgate rerun\r\n";
        assert_eq!(parse(body), parse(&body.replace("\r\n", "\n")));
        assert_eq!(parse(body).commands, [(5, overriding("two  words")), (6, Command::Rerun)]);
    }

    #[test]
    fn body_is_read_only_up_to_65536_chars() {
        let filler = format!("{}\n", "é".repeat(MAX_BODY_CHARS - 16 - 1));
        assert_eq!(filler.chars().count() + "/evalgate rerun\n".chars().count(), MAX_BODY_CHARS);
        assert_eq!(commands(&format!("{filler}/evalgate rerun\n/evalgate run")), [Command::Rerun]);
        // A line the limit cuts is dropped whole, so the reason is never cut short.
        assert_eq!(parse(&format!("{filler}/evalgate override a long reason")), Parsed::default());
    }

    #[test]
    fn more_than_ten_commands_give_one_too_many_error() {
        let body =
            format!("{}/evalgate rerum\n/evalgate run\n/evalgate approve-golden\n", "/evalgate rerun\n".repeat(10));
        let p = parse(&body);
        assert_eq!(p.commands.len(), 10);
        assert_eq!(p.commands[9], (10, Command::Rerun));
        assert_eq!(p.errors.len(), 2, "{:?}", p.errors);
        assert!(matches!(p.errors[0], ParseError::UnknownCommand { line: 11, .. }));
        assert_eq!(
            p.errors[1].to_string(),
            "line 12: `/evalgate run`: too many commands: at most 10 run per comment, so this one and 1 later one were not run"
        );
    }

    #[test]
    fn new_commands_returns_only_the_added_one() {
        let old = "/evalgate rerun\nthanks";
        let new = "/evalgate rerun\nthanks\n/evalgate explain refund-42";
        assert_eq!(new_commands(old, new), [(3, explaining("refund-42"))]);
        assert_eq!(new_commands(old, "edited: typo fixed\n/evalgate rerun"), []);
    }

    #[test]
    fn new_commands_counts_a_repeated_command() {
        let old = "/evalgate rerun\n/evalgate override flaky";
        let new = "/evalgate override flaky\n/evalgate rerun\n/evalgate rerun";
        assert_eq!(new_commands(old, new), [(3, Command::Rerun)]);
    }

    #[test]
    fn new_commands_treats_a_changed_override_reason_as_new() {
        let new = "/evalgate override judge outage";
        assert_eq!(new_commands("/evalgate override flaky", new), [(1, overriding("judge outage"))]);
    }

    #[test]
    fn user_text_in_an_error_cannot_leave_its_code_span() {
        let e = one_error("/evalgate `@org/team`");
        assert_eq!(
            e.to_string().split_once(';').map(|(head, _)| head),
            Some("line 1: unknown command `` /evalgate `@org/team` ``")
        );
        let long = one_error(&format!("/evalgate {}", "x".repeat(500)));
        assert!(long.to_string().len() < 600, "{long}");
    }
}
