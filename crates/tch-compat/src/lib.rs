//! rust-bert 0.23 asks for `tch ^0.17` (libtorch 2.4). This crate answers that request with the tch the workspace
//! really uses (0.24, libtorch 2.11), so rust-bert's modules and ours share one `Tensor` type and one libtorch.
//! See README.md beside this file for why it exists and how to move it to the next tch.
pub use tch_current::*;
