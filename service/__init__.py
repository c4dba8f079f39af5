"""HTTP inference service for sentiment model bundles."""
