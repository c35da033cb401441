#![no_main]
//! `emulator_http`: see `chimera_fuzz::inputs::emulator_http` and `chimera::fuzzing`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chimera_fuzz::inputs::emulator_http(data));
