"""Person masks from a COCO panoptic Mask2Former (transformers' ``Mask2FormerForUniversalSegmentation``).

The registered checkpoint is ``facebook/mask2former-swin-large-coco-panoptic`` (Swin-L backbone, 133
COCO panoptic classes, of which ``person`` is one 'thing' class): the strongest of the COCO panoptic
Mask2Former releases, and the segmentation the thesis' step 4 ("Mask2Former panoptic person") implies.
Preprocessing and post-processing are the checkpoint's own image processor (its
``preprocessor_config.json``) and ``post_process_panoptic_segmentation`` with transformers' defaults
(``threshold`` 0.8 on the class probability, ``mask_threshold`` 0.5, ``overlap_mask_area_threshold``
0.8), no label fusion, so each person is its own segment.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from triptych.vision.hf_folder import model_folder, torch_device

COMPANIONS = ("config.json", "preprocessor_config.json")


class PanopticPersons:
    """A loaded Mask2Former; ``masks(rgb)`` gives one bool mask per detected person, in the image's pixels."""

    def __init__(self, name: str, device: str = "cpu", threshold: float = 0.8) -> None:
        from transformers import AutoImageProcessor, Mask2FormerForUniversalSegmentation

        folder, self.record = model_folder(name, COMPANIONS)
        self.device = torch_device(device)
        self.processor = AutoImageProcessor.from_pretrained(str(folder))
        self.model = Mask2FormerForUniversalSegmentation.from_pretrained(str(folder)).to(self.device).eval()
        self.person_labels = {int(i) for i, label in self.model.config.id2label.items() if label == "person"}
        self.threshold = threshold

    def masks(self, rgb: np.ndarray) -> list[np.ndarray]:
        import torch

        inputs = self.processor(images=rgb, return_tensors="pt").to(self.device)
        with torch.no_grad():
            outputs = self.model(**inputs)
        result: dict[str, Any] = self.processor.post_process_panoptic_segmentation(
            outputs, threshold=self.threshold, label_ids_to_fuse=set(), target_sizes=[rgb.shape[:2]])[0]
        segmentation = result["segmentation"].cpu().numpy()
        return [segmentation == s["id"] for s in result["segments_info"] if s["label_id"] in self.person_labels]
