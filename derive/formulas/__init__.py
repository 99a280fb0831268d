"""The formula library: one module per topic, each registering its quantities."""
