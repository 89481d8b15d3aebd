"""local_pipeline."""
