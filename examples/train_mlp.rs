//! Trains the default MLP (784-256-10) on the bundled MNIST digits with C-AdamW and
//! prints its test accuracy. Run with `cargo run --release --example train_mlp`.

use std::sync::Arc;

use coptim::train::{OptimizerKind, Session, TrainConfig};

fn main() -> coptim::Result<()> {
    let ctx = coptim::GpuContext::new_blocking(&Default::default())?;
    let data = Arc::new(coptim::data::bundled_mnist()?);
    let config = TrainConfig::mlp(OptimizerKind::CAdamW);
    let mut session = Session::new(&ctx, config, data)?;
    session.run_blocking(|m| {
        if m.step % 100 == 0 {
            println!(
                "step {:>4}  loss {:.4}  kept {:.3}",
                m.step,
                m.loss,
                m.kept_fraction.unwrap_or(1.0)
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
