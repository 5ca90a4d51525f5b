"""DVC stage ``id_caption``: one caption per kept image, holding a class word.

docs/protocols/personalization.md step 5: BLIP-2 captions, re-sampled (stochastic mode) until a class word
(man, woman, boy, girl, ...) appears. Backends (``--backend``):

- ``light``: a template captioner: ``--template`` filled with the identity's class word from its folder
  suffix (``<name>_<classword>``), so every caption holds a class word by construction and nothing is
  re-sampled. Captions are cached per image content, template and class word.
- ``blip2`` (or ``heavy``): BLIP-2 (``triptych.vision.captioning``, registry entry ``--model``) on the
  image's square crop from ``id_crop_mask``: a greedy caption, then up to ``--tries`` - 1 sampled ones
  (seeds 1, 2, ...) until one holds a class word (``id_tag``'s rule); an image whose captions never do is
  dropped. The model is loaded once per worker process; ``--device cuda`` runs it in float16 on the GPU;
  ``--dtype bfloat16`` halves its memory on a CPU (the full OPT-2.7b model: about 7.7 GB instead of 15.5 GB).
  The number format is recorded in the stage log and in the cache key.
"""

from __future__ import annotations

from typing import Any

from triptych.errors import TriptychError
from triptych.media import read_rgb
from triptych.pipelines.id_table import (Table, compute_all, drop, image_path, load_previous, save, stage_cache,
                                         stage_parser)
from triptych.pipelines.id_tag import class_words
from triptych.pipelines.stage_io import choose_backend, once_per_process, parse_stage_args, run_stage, timed

STAGE = "id_caption"
VERSION = 1
HEAVY = "blip2"
BLIP2 = "blip2_opt_2_7b"


def template_caption(template: str, class_word: str) -> str:
    """>>> template_caption("a photo of a {class_word}", "woman")
    'a photo of a woman'
    """
    if "{class_word}" not in template:
        raise TriptychError(f"caption template {template!r} has no {{class_word}} placeholder",
                            fix="e.g. --template 'a photo of a {class_word}'")
    return template.replace("{class_word}", class_word)


@once_per_process
def heavy_captioner(model: str, device: str, dtype: str = "auto") -> Any:
    """BLIP-2, loaded once per process (each Ray worker keeps its own)."""
    from triptych.vision.captioning import Blip2Captioner

    return Blip2Captioner(model, device, dtype)


def blip2_caption(path: Any, crop_box: list[int], model: str, device: str, tries: int,
                  dtype: str = "auto") -> dict[str, Any]:
    """The first of up to ``tries`` captions of the crop (greedy, then sampled) that holds a class word;
    ``caption`` is None when none does, with every caption drawn."""
    x0, y0, x1, y1 = crop_box
    crop = read_rgb(path)[y0:y1, x0:x1]
    drawn = []
    for attempt in range(tries):
        text = heavy_captioner(model, device, dtype).caption(crop, None if attempt == 0 else attempt)
        drawn.append(text)
        if class_words(text):
            return {"caption": text, "captions_drawn": drawn}
    return {"caption": None, "captions_drawn": drawn}


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(STAGE, __doc__)
    parser.add_argument("--template", default="a photo of a {class_word}")
    parser.add_argument("--model", default=BLIP2, help="blip2: its weights registry name")
    parser.add_argument("--tries", type=int, default=5, help="blip2: captions drawn at most per image")
    parser.add_argument("--device", default="cpu", help="blip2: cpu | cuda")
    parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"),
                        help="blip2: the model's number format (auto: float16 on cuda, float32 on cpu)")
    args = parse_stage_args(parser, argv)
    backend = choose_backend(STAGE, args.backend, HEAVY)
    with timed(STAGE, args.timing) as timing:
        table: Table = load_previous(args.out, STAGE)
        if backend == "light":
            cache = stage_cache(args, STAGE, VERSION, template=args.template)
            for record in table.kept():
                word = record["folder_class_word"]
                record["caption"] = cache.get_or_compute(record["sha256"],
                                                         lambda: template_caption(args.template, word), extra=word)
                record["caption_backend"] = "light: template"
                timing.items += 1
            label, params, weights = "light: template captioner", {"template": args.template}, []
        else:
            from triptych.vision.captioning import COMPANIONS, resolve_dtype
            from triptych.vision.hf_folder import model_folder

            model_record = model_folder(args.model, COMPANIONS)[1]  # the model loads where the crops are
            weights = [{k: model_record[k] for k in ("name", "sha256")}]
            dtype = resolve_dtype(args.dtype, args.device)
            cache = stage_cache(args, STAGE, VERSION, model=weights, tries=args.tries, dtype=dtype)
            kept = table.kept()
            results = compute_all(cache, args, [(r["sha256"], r["crop_box"], blip2_caption,
                                                 (image_path(table, r), r["crop_box"], args.model, args.device,
                                                  args.tries, dtype)) for r in kept])
            for record, result in zip(kept, results):
                record.update(caption=result["caption"], captions_drawn=result["captions_drawn"],
                              caption_backend=f"blip2: {args.model}")
                if result["caption"] is None:
                    drop(record, STAGE, f"no class word in {len(result['captions_drawn'])} BLIP-2 captions")
                timing.items += 1
            label = f"blip2: {args.model} in {dtype} (greedy, then top-p 0.9 samples)"
            params = {"model": args.model, "tries": args.tries, "dtype": dtype}
        timing.count(cache)
        table.log(STAGE, label, {"backend": args.backend, **params}, **({"weights": weights} if weights else {}))
        save(table, args.out, STAGE)
    print(f"{STAGE}: {len(table.kept())} captions")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
