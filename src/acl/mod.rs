//! Gateway users ([`users`]), pure permission decisions ([`check`]) and Redis globs ([`glob`]).

pub mod check;
pub mod glob;
pub mod users;

pub use check::Denied;
pub use users::{AuthError, User, Users};
