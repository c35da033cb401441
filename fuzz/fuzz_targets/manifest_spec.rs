#![no_main]
//! `manifest_spec`: see `chimera_fuzz::inputs::manifest_spec` and `chimera::fuzzing`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chimera_fuzz::inputs::manifest_spec(data));
