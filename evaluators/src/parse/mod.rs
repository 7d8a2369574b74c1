//! Parsers from text to the spanned [`Node`](crate::tree::Node) tree.
//!
//! Both reject what evalgate's formats never need and an attacker could abuse: nesting deeper
//! than [`limits::MAX_DEPTH`](crate::limits::MAX_DEPTH), more than
//! [`limits::MAX_NODES`](crate::limits::MAX_NODES) values (YAML alias bombs), several YAML
//! documents in one file, duplicate keys.

pub mod json;
pub mod yaml;

use crate::diagnostic::Pos;
use std::fmt;

/// A syntax error: the position and what the parser expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.pos.line, self.pos.col, self.message)
    }
}

impl std::error::Error for SyntaxError {}
