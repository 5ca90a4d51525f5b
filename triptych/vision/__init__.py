"""Vision toolkits shared by metrics, methods, benchmarks and the dataset pipelines (docs/architecture.md,
layer 2): faces (``face.py``, ``retinaface.py``), optical flow (``flow.py``), captions, segmentation."""
