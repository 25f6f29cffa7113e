//! Compiles every contract under `proto/` with protox (pure Rust, no system protoc),
//! generates messages, clients and servers, and keeps the encoded descriptor set for
//! server reflection and REST transcoding.

use std::error::Error;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn Error>> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("../../proto").canonicalize()?;

    let mut files = Vec::new();
    collect_protos(&root, &mut files)?;
    files.sort();
    // Relative to this package, which cargo resolves against the checkout being
    // built: with a build directory shared between checkouts (CI clones and a
    // working tree), absolute paths would have cargo watch the checkout that
    // ran this script last and miss edits in another.
    println!("cargo:rerun-if-changed=../../proto");
    for file in &files {
        let relative = file
            .strip_prefix(&root)
            .map(|rest| Path::new("../../proto").join(rest))
            .unwrap_or_else(|_| file.clone());
        println!("cargo:rerun-if-changed={}", relative.display());
    }

    let mut compiler = protox::Compiler::new([&root])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(&files)?;
    let descriptors = compiler.file_descriptor_set();
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // Encoded by the compiler itself: encoding `descriptors` (prost types) would
    // drop extension options such as `google.api.http`, which the gateway's REST
    // mapping reads from this set.
    std::fs::write(
        out_dir.join("itsm_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Methods a service has not built yet answer UNIMPLEMENTED instead of
        // forcing every practice crate to write stubs by hand.
        .generate_default_stubs(true)
        // Map fields as BTreeMap: a message encodes to the same bytes every
        // time (sorted keys), which idempotency hashes and caches rely on.
        .btree_map(".")
        .include_file("itsm.rs")
        .compile_fds(descriptors)?;
    Ok(())
}

fn collect_protos(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, files)?;
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    Ok(())
}
