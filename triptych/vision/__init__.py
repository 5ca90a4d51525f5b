"""Vision models shared by the metrics and the dataset pipelines (face detection, ...)."""
