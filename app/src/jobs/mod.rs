//! The job machinery, below the handlers: the context every job runs with, the job error,
//! the dispatcher of job kinds to their handlers, and the publisher that brings GitHub in line
//! with the decisions in the database. Handlers import `context` and `error`; only `dispatch`
//! imports the handlers, so the modules form a DAG.

pub mod context;
pub mod dispatch;
pub mod error;
pub mod publish;

pub use context::{Ctx, installation_of};
pub use error::JobError;
