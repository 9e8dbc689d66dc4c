"""Model providers: embedders, extractors, and the OpenAI-compatible chat client."""
