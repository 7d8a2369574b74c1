//! Diagnostics: what is wrong, and exactly where.
//!
//! Every problem evalgate finds in a customer's files becomes a [`Diagnostic`] naming the file
//! (repository-relative, `/`-separated, so the same text works as a GitHub annotation path) and,
//! wherever the input has them, the 1-based line and column. Checks collect diagnostics instead
//! of stopping at the first, so one `evalgate check` run shows every problem.

use std::fmt;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub const fn new(line: u32, col: u32) -> Self {
        Pos { line, col }
    }
}

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Repository-relative path of the file the problem is in.
    pub file: String,
    /// Where in the file, when the input has positions (a missing file has none).
    pub pos: Option<Pos>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{}:{}:{}: error: {}", self.file, p.line, p.col, self.message),
            None => write!(f, "{}: error: {}", self.file, self.message),
        }
    }
}

/// A collector of diagnostics for one file at a time.
///
/// Loaders take `&mut Diagnostics` and keep going after a problem, so that every problem is
/// reported; they return `None` for a value they could not build.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, file: &str, pos: Option<Pos>, message: impl Into<String>) {
        self.items.push(Diagnostic { file: file.to_owned(), pos, message: message.into() });
    }

    pub fn at(&mut self, file: &str, pos: Pos, message: impl Into<String>) {
        self.push(file, Some(pos), message);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    /// The diagnostics in file, line, column order; the order they were found breaks ties.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| {
            (a.file.as_str(), a.pos.unwrap_or_default()).cmp(&(b.file.as_str(), b.pos.unwrap_or_default()))
        });
        self.items.dedup();
        self.items
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }
}

/// A view of [`Diagnostics`] bound to one file, so call sites only say where and what.
pub struct FileDiags<'a> {
    pub file: &'a str,
    pub diags: &'a mut Diagnostics,
}

impl<'a> FileDiags<'a> {
    pub fn new(file: &'a str, diags: &'a mut Diagnostics) -> Self {
        FileDiags { file, diags }
    }

    pub fn at(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.at(self.file, pos, message);
    }

    pub fn whole(&mut self, message: impl Into<String>) {
        self.diags.push(self.file, None, message);
    }

    /// Errors pushed so far, across all files (to tell whether a step added any).
    pub fn count(&self) -> usize {
        self.diags.len()
    }
}
