//! Imported cases into an existing `cases.jsonl`, in place: a line whose case id an import
//! makes is replaced where it stands, every other line (other cases, hand edits, blank lines,
//! line endings) is copied byte for byte, and cases new to the set are appended in the order
//! their conversations first appeared. So importing the same input again changes nothing.

use super::{ImportedCase, InputError, Line, read_line};
use crate::limits::{MAX_CASE_LINE_BYTES, MAX_CASES, MAX_CASES_FILE_BYTES};
use std::collections::HashMap;
use std::io::{BufRead, Write};

/// What a merge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Merged {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Other lines of the file, kept as they were.
    pub kept: usize,
    pub bytes: u64,
}

#[derive(serde::Deserialize)]
struct IdOnly {
    id: Option<serde_json::Value>,
}

/// Writes `existing` (named `name` in errors) with `cases` merged in to `out`. An existing
/// line that cannot be read is an error: its case id is unknown, so importing could duplicate it.
pub fn merge(
    existing: Option<&mut dyn BufRead>,
    name: &str,
    cases: &[ImportedCase],
    out: &mut dyn Write,
) -> Result<Merged, MergeError> {
    let by_id: HashMap<&str, &ImportedCase> = cases.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut done: HashMap<&str, bool> = HashMap::new();
    let mut m = Merged::default();
    let mut case_lines = 0usize;
    let write = |out: &mut dyn Write, bytes: &[u8], m: &mut Merged| -> Result<(), MergeError> {
        m.bytes += bytes.len() as u64;
        if m.bytes > MAX_CASES_FILE_BYTES {
            return Err(MergeError::Input(InputError {
                file: name.to_owned(),
                line: None,
                col: None,
                message: format!("would be over the limit of {MAX_CASES_FILE_BYTES} bytes with the imported cases"),
            }));
        }
        out.write_all(bytes).map_err(MergeError::Io)
    };
    let appending = |done: &HashMap<&str, bool>| cases.iter().any(|c| !done.contains_key(c.id.as_str()));
    if let Some(r) = existing {
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        // The line end to write after a line: none after a last line that had none, unless
        // cases are appended after it.
        let mut pending_newline = false;
        loop {
            line_no += 1;
            let Some(Line { len, kept, newline }) =
                read_line(r, &mut buf, MAX_CASE_LINE_BYTES + 1).map_err(MergeError::Io)?
            else {
                break;
            };
            if pending_newline {
                write(out, b"\n", &mut m)?;
            }
            pending_newline = newline;
            let err = |col: Option<u64>, message: String| {
                MergeError::Input(InputError { file: name.to_owned(), line: Some(line_no), col, message })
            };
            if !kept || len > MAX_CASE_LINE_BYTES {
                return Err(err(None, format!("line is {len} bytes, over the limit of {MAX_CASE_LINE_BYTES} bytes")));
            }
            let text = buf.strip_suffix(b"\r").unwrap_or(&buf);
            if text.iter().all(u8::is_ascii_whitespace) {
                write(out, &buf, &mut m)?;
                m.kept += 1;
                continue;
            }
            case_lines += 1;
            let id = match serde_json::from_slice::<IdOnly>(text) {
                Ok(IdOnly { id: Some(serde_json::Value::String(id)) }) => id,
                Ok(_) => return Err(err(None, "a case without a string `id`; fix the line, then import again".into())),
                Err(e) => {
                    let col = (e.column() > 0).then_some(e.column() as u64);
                    return Err(err(col, "cannot be read as JSON; fix the line, then import again".into()));
                }
            };
            match by_id.get(id.as_str()) {
                Some(case) if !done.contains_key(id.as_str()) => {
                    done.insert(case.id.as_str(), true);
                    if case.line.as_bytes() == text {
                        m.unchanged += 1;
                        write(out, &buf, &mut m)?;
                    } else {
                        m.updated += 1;
                        write(out, case.line.as_bytes(), &mut m)?;
                    }
                }
                _ => {
                    m.kept += 1;
                    write(out, &buf, &mut m)?;
                }
            }
        }
        if line_no > 1 && (pending_newline || appending(&done)) {
            write(out, b"\n", &mut m)?;
        }
    }
    for case in cases {
        if done.contains_key(case.id.as_str()) {
            continue;
        }
        m.added += 1;
        case_lines += 1;
        write(out, case.line.as_bytes(), &mut m)?;
        write(out, b"\n", &mut m)?;
    }
    if case_lines > MAX_CASES {
        return Err(MergeError::Input(InputError {
            file: name.to_owned(),
            line: None,
            col: None,
            message: format!("would hold {case_lines} cases with the imported ones, over the limit of {MAX_CASES}"),
        }));
    }
    Ok(m)
}

#[derive(Debug)]
pub enum MergeError {
    Input(InputError),
    Io(std::io::Error),
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeError::Input(e) => e.fmt(f),
            MergeError::Io(e) => write!(f, "cannot write: {e}"),
        }
    }
}
