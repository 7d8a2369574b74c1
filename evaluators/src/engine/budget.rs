//! The per-run spending cap (`eval.budget`): checked before every model call, charged after.

use std::sync::Mutex;

/// Why the run stopped spending.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("budget reached: {what}")]
pub struct BudgetReached {
    pub what: String,
}

#[derive(Debug, Default)]
struct Spent {
    usd: f64,
    tokens: u64,
}

/// Shared by every call of one gate run. Calls already in flight when the cap is reached
/// still finish and are charged, so the overshoot is at most `concurrency` calls.
#[derive(Debug)]
pub struct Budget {
    max_usd: Option<f64>,
    max_tokens: Option<u64>,
    spent: Mutex<Spent>,
}

impl Budget {
    pub fn new(max_usd: Option<f64>, max_tokens: Option<u64>) -> Self {
        Budget { max_usd, max_tokens, spent: Mutex::new(Spent::default()) }
    }

    /// Refuses a new call once either cap is reached.
    pub fn admit(&self) -> Result<(), BudgetReached> {
        let s = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(max) = self.max_usd {
            if s.usd >= max {
                return Err(BudgetReached { what: format!("spent ${:.4} of max_usd ${max}", s.usd) });
            }
        }
        if let Some(max) = self.max_tokens {
            if s.tokens >= max {
                return Err(BudgetReached { what: format!("used {} tokens of max_tokens {max}", s.tokens) });
            }
        }
        Ok(())
    }

    pub fn charge(&self, usd: f64, tokens: u64) {
        let mut s = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        s.usd += usd;
        s.tokens += tokens;
    }

    pub fn spent(&self) -> (f64, u64) {
        let s = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        (s.usd, s.tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_until_the_dollar_cap_is_reached() {
        let b = Budget::new(Some(1.0), None);
        assert!(b.admit().is_ok());
        b.charge(0.6, 10);
        assert!(b.admit().is_ok());
        b.charge(0.4, 10);
        let e = b.admit().expect_err("cap reached");
        assert!(e.to_string().contains("max_usd $1"), "{e}");
    }

    #[test]
    fn admits_until_the_token_cap_is_reached() {
        let b = Budget::new(None, Some(100));
        b.charge(0.0, 99);
        assert!(b.admit().is_ok());
        b.charge(0.0, 1);
        assert!(b.admit().is_err());
    }

    #[test]
    fn no_caps_never_refuse() {
        let b = Budget::new(None, None);
        b.charge(1e9, u64::MAX / 2);
        assert!(b.admit().is_ok());
    }
}
