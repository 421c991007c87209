//! Links pause as a static executable with no C runtime: no libc, no crt objects, no program interpreter.

fn main() {
    for argument in [
        // `_start` is ours (src/arch): no crt1.o, crti.o, libc or libgcc.
        "-nostartfiles",
        "-nostdlib",
        // A plain static executable: no PT_INTERP, loadable at a fixed address,
        // so no relocations need applying at start-up.
        "-static",
        "-no-pie",
        "-Wl,--gc-sections",
        // No build-id note and no separate page for read-only data: bytes every pod pays for.
        "-Wl,--build-id=none",
        "-Wl,-z,noseparate-code",
    ] {
        println!("cargo:rustc-link-arg-bins={argument}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
