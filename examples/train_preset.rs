//! Trains one model preset on the bundled MNIST digits and prints its test accuracy.
//! Run with `cargo run --release --example train_preset -- [MODEL] [OPTIMIZER]`:
//! MODEL is a preset name (`mlp`, the default, `vit`, `mlp-small`, `vit-tiny`; see
//! `coptim presets`), OPTIMIZER an optimizer name (default `c-adamw`).

use std::sync::Arc;

use coptim::train::presets::ModelPreset;
use coptim::train::{OptimizerKind, Session, TrainConfig};

fn main() -> coptim::Result<()> {
    let mut args = std::env::args().skip(1);
    let preset = ModelPreset::named(&args.next().unwrap_or_else(|| "mlp".into()))?;
    let optimizer: OptimizerKind = args.next().as_deref().unwrap_or("c-adamw").parse()?;
    println!("{} with {}", preset.describe(), optimizer.name());

    let ctx = coptim::GpuContext::new_blocking(&Default::default())?;
    let data = Arc::new(coptim::data::bundled_mnist()?);
    let config = TrainConfig::from_preset(preset, optimizer);
    let mut session = Session::new(&ctx, config, data)?;
    session.run_blocking(|m| {
        if m.step % 100 == 0 {
            let kept = m.kept_fraction.map(|k| format!("  kept {k:.3}"));
            println!(
                "step {:>4}  loss {:.4}{}",
                m.step,
                m.loss,
                kept.unwrap_or_default()
            );
        }
    })?;
    let test = session
        .history()
        .last_eval()
        .expect("the run ends with an evaluation");
    println!("test accuracy {:.2}%", 100.0 * test.accuracy);
    Ok(())
}
