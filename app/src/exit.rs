//! Exit codes (SPEC): 0 ok, 1 gate failed or checks found errors, 2 usage or setup error,
//! 3 evaluation incomplete. Never 0 unless the work was really done.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed,
    Setup,
    Incomplete,
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> ExitCode {
        ExitCode::from(match o {
            Outcome::Ok => 0,
            Outcome::Failed => 1,
            Outcome::Setup => 2,
            Outcome::Incomplete => 3,
        })
    }
}
