//! `dept env`: the libtorch in use, CUDA devices (name, memory) and CPU threads.

use anyhow::Result;

pub fn run() -> Result<()> {
    println!("dept            {}", env!("CARGO_PKG_VERSION"));
    print!("{}", dept_train::environment::Environment::probe());
    Ok(())
}
