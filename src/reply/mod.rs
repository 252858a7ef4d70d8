//! Replies on their way back to a client: the per-client reply queue that keeps request order
//! ([`queue`]), the merge of split and fanned-out replies ([`merge`]) with the SCAN cursor codec
//! it rewrites cursors with ([`scan`]), the INFO folds ([`info`]) and CONFIG's replies ([`config`]), and the [`sink`] a
//! backend delivers each reply to.
//! Nothing here does I/O or knows about connections.

pub mod config;
pub mod info;
pub mod merge;
pub mod queue;
pub mod scan;
pub mod sink;
