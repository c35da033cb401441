#![no_main]
//! `manifest`: see `chimera_fuzz::inputs::manifest` and `chimera::fuzzing`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chimera_fuzz::inputs::manifest(data));
