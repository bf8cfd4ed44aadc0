//! `dept selftest`: prints dept-bench's device-against-CPU check and fails when they differ.

use anyhow::{bail, Result};

pub use dept_bench::selftest::SelftestArgs;

pub fn run(args: &SelftestArgs) -> Result<()> {
    let report = dept_bench::selftest::run(args)?;
    print!("{report}");
    let failures = report.failures();
    if !failures.is_empty() {
        bail!(
            "{:?} differs from the CPU: {}",
            report.device,
            failures.join(", ")
        );
    }
    println!("{:?} matches the CPU", report.device);
    Ok(())
}
