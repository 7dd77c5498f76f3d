//! placeholder
use clap::Args;
#[derive(Debug, Args)]
pub struct Options {}
pub async fn run(_o: Options) -> anyhow::Result<()> {
    Ok(())
}
