//! Native timings of the hot paths (for comparison with the wasm32 figures).
use std::time::Instant;

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    println!("{:<28} {:>12} {:>10}", "operation (native)", "µs/op", "iterations");
    // `bench-cpu-native <op>` runs only that benchmark (for profilers).
    let only: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    for op in bench_cpu::OPS.iter().filter(|op| only.as_deref().is_none_or(|o| o == **op)) {
        bench_cpu::run(op, 3); // warm-up
        let n = iterations(op, quick);
        // run(op, 0) is the setup alone (keys, tokens, configuration); subtract it.
        let setup = Instant::now();
        std::hint::black_box(bench_cpu::run(op, 0));
        let setup = setup.elapsed();
        let start = Instant::now();
        std::hint::black_box(bench_cpu::run(op, n));
        let per = start.elapsed().saturating_sub(setup).as_secs_f64() * 1e6 / f64::from(n);
        println!("{op:<28} {per:>12.2} {n:>10}");
    }
}

fn iterations(op: &str, quick: bool) -> u32 {
    let base = if op.contains("verify") || op.contains("callback") { 200 } else { 5000 };
    if quick {
        base / 10
    } else {
        base
    }
}
