//! A native timing probe for the MNIST CNN (batch 8): `cargo test -p wick-worker --release --lib
//! latency_probe -- --ignored --nocapture`. Native x86 numbers only guide; the target is wasm
//! simd128 in a browser (`cargo xtask bench latency`).

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

#[test]
#[ignore = "a timing probe, not a check"]
fn mnist_cnn_batch_8_per_run_and_per_op() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let model = crate::native::load_model(&root.join("www/models/digits/model.onnx")).expect("model loads");
    let (name, x) = crate::native::read_tensor(&root.join("tests/fixtures/digits/test_data_set_0/input_0.pb")).expect("input");
    let feed = || HashMap::from([(name.clone(), x.clone())]);
    for _ in 0..200 {
        model.run(feed(), None).expect("runs");
    }
    let runs = 2000;
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            model.run(feed(), None).expect("runs");
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    eprintln!("mnist-cnn batch 8: median {:.1} µs, min {:.1} µs over {runs} runs", times[runs / 2], times[0]);
    // Per op: the time from one step's hook to the next.
    let mut per: Vec<(String, f64)> = Vec::new();
    for _ in 0..runs {
        let mut last: Option<(String, Instant)> = None;
        let mut i = 0;
        model
            .run_observed(feed(), None, &mut |op| {
                let now = Instant::now();
                if let Some((name, t)) = last.take() {
                    if per.len() <= i {
                        per.push((name, 0.0));
                    }
                    per[i].1 += (now - t).as_secs_f64() * 1e6 / runs as f64;
                    i += 1;
                }
                last = op.map(|o| (o.to_string(), now));
            })
            .expect("runs");
    }
    for (op, us) in per {
        eprintln!("  {op:<12} {us:7.1} µs");
    }
}
