//! One module per `dept` subcommand; each turns parsed arguments into calls to the library crates.

pub mod bench;
pub mod budget;
pub mod data;
pub mod data_fetch;
pub mod env;
pub mod eval;
pub mod features;
pub mod official;
pub mod predict;
pub mod quickstart;
pub mod selftest;
pub mod serve;
pub mod sweep;
pub mod tiny;
pub mod train;
pub mod verify;
