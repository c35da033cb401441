//! Ollama native API client (placeholder until the client lands).
