//! `edge-bff-bindgen <input.wasm> <out-dir>`: the JS bindings of edge-bff's wasm module,
//! generated as `wasm-bindgen --target module --out-name index --no-typescript
//! --experimental-reset-state-function --force-enable-abort-handler` would (the
//! arguments worker-build used): `index.js`, `index_bg.wasm` and the `snippets/` of
//! `#[wasm_bindgen(module = …)]` imports, in `out-dir`.
//!
//! `edge-bff-bindgen --nodejs <input.wasm> <out-dir>`: CommonJS bindings for Node.js
//! (`--target nodejs`), for the CPU benchmark of scripts/bench.sh.
//!
//! Its wasm-bindgen version is the one pinned in its Cargo.toml; scripts/build.sh checks
//! that it is the one in the project's Cargo.lock.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, input, out_dir] if flag == "--nodejs" => report(generate(input, out_dir, Target::Nodejs)),
        [input, out_dir] => report(generate(input, out_dir, Target::Worker)),
        _ => {
            eprintln!("usage: edge-bff-bindgen [--nodejs] <input.wasm> <out-dir>");
            ExitCode::from(2)
        }
    }
}

/// The kind of bindings to generate.
enum Target {
    /// The ES module a Worker imports, with panic recovery.
    Worker,
    /// CommonJS for Node.js.
    Nodejs,
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edge-bff-bindgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Run the generator on `input`, writing into `out_dir`.
fn generate(input: &str, out_dir: &str, target: Target) -> anyhow::Result<()> {
    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen.input_path(input).typescript(false);
    match target {
        Target::Worker => {
            // `module`: an ES module that imports the wasm as `import source` (the build
            // turns it into the plain import workerd and esbuild read).
            bindgen.module(true)?;
            bindgen
                .out_name("index")
                // Panic recovery (src/runtime/entry.mjs): a fresh instance after a trap.
                .reset_state_function(true)
                .force_enable_abort_handler(true);
        }
        Target::Nodejs => {
            bindgen.nodejs(true)?;
        }
    }
    bindgen.generate(out_dir)
}
