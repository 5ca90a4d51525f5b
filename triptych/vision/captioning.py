"""Image captions from BLIP-2 (transformers' ``Blip2ForConditionalGeneration``).

The registered checkpoint is ``Salesforce/blip2-opt-2.7b`` (ViT-g image encoder, Q-Former, OPT-2.7b
language model), the captioner of the thesis' step 5. Generation settings (recorded in every stage log):

- no text prompt: the model captions the image from its 32 query tokens alone (the model card's
  captioning usage);
- the first caption is deterministic: greedy decoding (``num_beams=1``, ``do_sample=False``), at most
  ``MAX_NEW_TOKENS`` new tokens;
- the stochastic mode of the thesis (re-sample until the caption holds a class word) draws further
  captions with ``do_sample=True``, ``top_p=0.9``, ``temperature=1.0``, each with its own seed
  (``torch.manual_seed(seed)`` before ``generate``), so every caption is reproducible;
- the number format (``dtype``): float16 on a GPU, float32 on a CPU unless asked otherwise (``bfloat16``
  halves the CPU memory of the full model, about 7.7 GB instead of 15.5 GB; captions may differ slightly
  between formats, so the stage records it).
"""

from __future__ import annotations

import numpy as np

from triptych.errors import TriptychError
from triptych.vision.hf_folder import model_folder, torch_device

MAX_NEW_TOKENS = 30
TOP_P = 0.9
TEMPERATURE = 1.0
# The image processor's settings come as preprocessor_config.json (the released repository) or inside
# processor_config.json (what transformers 5's save_pretrained writes); from_pretrained reads either.
COMPANIONS = ("config.json", "tokenizer_config.json")
DTYPES = ("float32", "bfloat16", "float16")


def resolve_dtype(dtype: str, device: str) -> str:
    """The number format the model runs in: ``auto`` is float16 on CUDA and float32 on a CPU.

    >>> resolve_dtype("auto", "cuda"), resolve_dtype("auto", "cpu"), resolve_dtype("bfloat16", "cpu")
    ('float16', 'float32', 'bfloat16')
    """
    if dtype == "auto":
        return "float16" if device.startswith("cuda") else "float32"
    if dtype not in DTYPES:
        raise TriptychError(f"--dtype {dtype!r}: not a number format BLIP-2 runs in",
                            fix=f"use auto or one of: {', '.join(DTYPES)}")
    return dtype


class Blip2Captioner:
    """A loaded BLIP-2; ``caption(rgb, seed)`` gives the greedy caption (seed None) or a sampled one."""

    def __init__(self, name: str, device: str = "cpu", dtype: str = "auto") -> None:
        import torch
        from transformers import Blip2ForConditionalGeneration, Blip2Processor

        folder, self.record = model_folder(name, COMPANIONS)
        self.device = torch_device(device)
        dtype = getattr(torch, resolve_dtype(dtype, device))
        self.processor = Blip2Processor.from_pretrained(str(folder))
        self.model = Blip2ForConditionalGeneration.from_pretrained(str(folder), dtype=dtype).to(self.device).eval()
        self.dtype = dtype

    def caption(self, rgb: np.ndarray, seed: int | None = None) -> str:
        import torch

        inputs = self.processor(images=rgb, return_tensors="pt").to(self.device, self.dtype)
        options = ({"do_sample": False, "num_beams": 1} if seed is None
                   else {"do_sample": True, "top_p": TOP_P, "temperature": TEMPERATURE})
        if seed is not None:
            torch.manual_seed(seed)
        with torch.no_grad():
            tokens = self.model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, **options)
        return self.processor.batch_decode(tokens, skip_special_tokens=True)[0].strip()
