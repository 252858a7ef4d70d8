//! Gateway users and permissions: who a client is ([`users`]), the pure decisions on what it
//! may run ([`check`]) and Redis' glob matching ([`glob`]). Below the router, above config.

pub mod check;
pub mod glob;
pub mod users;

pub use check::Denied;
pub use users::{AuthError, User, Users};
