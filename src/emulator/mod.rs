//! `chimera emulate`: a deterministic Ollama-protocol test server (being built).
