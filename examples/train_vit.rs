//! Trains the default small ViT (patch 14, width 64, 2 blocks of 4 heads) on the
//! bundled MNIST digits with C-AdamW and prints its test accuracy. Run with
//! `cargo run --release --example train_vit`.

use std::sync::Arc;

use coptim::train::{OptimizerKind, Session, TrainConfig};

fn main() -> coptim::Result<()> {
    let ctx = coptim::GpuContext::new_blocking(&Default::default())?;
    let data = Arc::new(coptim::data::bundled_mnist()?);
    let config = TrainConfig::vit(OptimizerKind::CAdamW);
    let mut session = Session::new(&ctx, config, data)?;
    session.run_blocking(|m| {
        if m.step % 100 == 0 {
            println!("step {:>4}  loss {:.4}", m.step, m.loss);
        }
    })?;
    let test = session
        .history()
        .last_eval()
        .expect("the run ends with an evaluation");
    println!("test accuracy {:.2}%", 100.0 * test.accuracy);
    Ok(())
}
