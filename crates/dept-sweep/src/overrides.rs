//! The `--set` of a run, kept in its sweep folder: the items change every point's config, so a later call without
//! them (a resumed run, `dept sweep status`) must see the same configs, or it would find every started point's
//! config changed.

use std::path::Path;

use crate::error::{Result, SweepError};
use crate::spec::Sweep;

/// Where the `--set` of a run is kept, in its sweep folder.
pub const OVERRIDES_FILE: &str = "overrides.json";

/// The sweep with `set` applied, or, when `set` is empty, with the `--set` an earlier run saved in its folder
/// (saying so).
pub fn load(file: &Path, out: Option<&Path>, set: &[String]) -> Result<Sweep> {
    let sweep = Sweep::load(file, out, set)?;
    if !set.is_empty() {
        return Ok(sweep);
    }
    let saved = sweep.out.join(OVERRIDES_FILE);
    let Ok(text) = std::fs::read_to_string(&saved) else {
        return Ok(sweep);
    };
    let saved_set: Vec<String> =
        serde_json::from_str(&text).map_err(|error| SweepError::SavedOverrides {
            path: saved.clone(),
            error,
        })?;
    if saved_set.is_empty() {
        return Ok(sweep);
    }
    println!(
        "using the --set of an earlier run ({}): {}",
        saved.display(),
        saved_set.join(" ")
    );
    Sweep::load(file, out, &saved_set)
}

/// Keeps `set` in the sweep folder for later calls; an empty `set` leaves what an earlier run saved.
pub fn save(sweep: &Sweep, set: &[String]) -> Result<()> {
    if set.is_empty() {
        return Ok(());
    }
    let path = sweep.out.join(OVERRIDES_FILE);
    let text =
        serde_json::to_string_pretty(set).map_err(|e| SweepError::serialize(OVERRIDES_FILE, e))?;
    crate::write::write_file(&path, &(text + "\n"))
}
