#![no_main]
//! `ollama_stream`: see `chimera_fuzz::inputs::ollama_stream` and `chimera::fuzzing`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| chimera_fuzz::inputs::ollama_stream(data));
