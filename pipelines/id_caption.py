"""DVC stage ``id_caption``: one caption per kept image, holding a class word.

protocols.md section 3, step 5: BLIP-2 captions, re-sampled (stochastic mode) until a class word
(man, woman, boy, girl, ...) appears. The heavy ``blip2`` backend is declared here and needs its model;
the light backend is a template captioner: ``--template`` filled with the identity's class word from
its folder suffix (``<name>_<classword>``), so every caption holds a class word by construction and
nothing is re-sampled. Captions are cached per image content, template and class word.
"""

from __future__ import annotations

from triptych.errors import TriptychError
from triptych.pipelines.id_table import Table, load_previous, save, stage_cache, stage_parser
from triptych.pipelines.stage_io import check_backend, run_stage, timed

STAGE = "id_caption"
VERSION = 1
HEAVY = {"blip2": ("transformers and accelerate (pip install transformers accelerate)",
                   "Salesforce/blip2-opt-2.7b (add it to triptych/data/weights.yaml)")}


def template_caption(template: str, class_word: str) -> str:
    """>>> template_caption("a photo of a {class_word}", "woman")
    'a photo of a woman'
    """
    if "{class_word}" not in template:
        raise TriptychError(f"caption template {template!r} has no {{class_word}} placeholder",
                            fix="e.g. --template 'a photo of a {class_word}'")
    return template.replace("{class_word}", class_word)


def main(argv: list[str] | None = None) -> None:
    parser = stage_parser(STAGE, __doc__)
    parser.add_argument("--template", default="a photo of a {class_word}")
    args = parser.parse_args(argv)
    check_backend(STAGE, args.backend, HEAVY)
    with timed(STAGE, args.timing) as timing:
        table: Table = load_previous(args.out, STAGE)
        cache = stage_cache(args, STAGE, VERSION, template=args.template)
        for record in table.kept():
            word = record["folder_class_word"]
            record["caption"] = cache.get_or_compute(record["sha256"], lambda: template_caption(args.template, word),
                                                     extra=word)
            record["caption_backend"] = "light: template"
            timing.items += 1
        timing.computed, timing.cached = cache.misses, cache.hits
        table.log(STAGE, "light: template captioner", {"backend": args.backend, "template": args.template})
        save(table, args.out, STAGE)
    print(f"{STAGE}: {len(table.kept())} captions")


if __name__ == "__main__":
    raise SystemExit(run_stage(main))
