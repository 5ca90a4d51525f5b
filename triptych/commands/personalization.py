"""``triptych personalization init --out DIR [--refs DIR]``: the folders and prompt list of a generation run.

It writes ``<out>/<id_slug>/<NN>_<prompt_slug>/`` for every (identity, prompt) of the selection and
``<out>/prompts.csv`` + ``<out>/prompts.json``: one row per image to generate, with the prompt's class word
filled in, the image's seed (``celeb_protocol.image_seed``: ``seed + (i*40 + p)*4 + k``, the seed of ``triptych
generate`` and of ``triptych score --method``) and the image's path (docs/conventions.md, personalization layout).
With ``--refs`` the identities are those of the reference folder (``--ids``; the lookup and slice grammar of
the benchmark and of ``triptych generate``) and each row names the references the method gets
(``--single-ref``: one per identity, picked by ``--seed`` exactly as the ``single-ref`` benchmark variant
picks it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

personalization_app = typer.Typer(help="Identity-preserving generation: the celeb-25id-40prompt protocol.",
                                  no_args_is_help=True)
COLUMNS = ("id", "id_slug", "class_word", "prompt_index", "prompt", "seed", "path", "references")


@personalization_app.command("init")
def init_command(
    out: Path = typer.Option(..., "--out", help="the generation folder to prepare (later: --pred-dir)"),
    refs: Optional[Path] = typer.Option(None, "--refs", help="reference photos, a folder per identity (default: "
                                        "the protocol's 25 IDs, without references)"),
    ids: str = typer.Option("protocol", "--ids", help="protocol, found (every identity under --refs), N (the "
                            "first N protocol IDs) or names or id slugs separated by commas"),
    prompts: str = typer.Option("all", "--prompts", help="all, N (the first N) or indices and ranges, e.g. 0,7,10-12"),
    images_per_prompt: int = typer.Option(4, "--images-per-prompt", help="images per identity and prompt (1-4)"),
    single_ref: bool = typer.Option(False, "--single-ref", help="one reference per identity (single-image methods)"),
    seed: int = typer.Option(0, "--seed", help="base seed of the image seeds; also picks the single reference "
                             "(recorded in prompts.json)"),
) -> None:
    """Write the expected folders and the prompt list (prompts.csv, prompts.json) under --out."""
    import csv
    import json

    from triptych.atomic import atomic_write_text
    from triptych.benchmarks.celeb import PROMPT_FILES
    from triptych.benchmarks.celeb_protocol import CLI_OPTIONS, id_slug, make_plan

    params = {"refs": str(refs) if refs else None, "ids": ids, "prompts": prompts, "images_per_prompt": images_per_prompt,
              "given": "one" if single_ref else "all", "seed": seed}
    plan, portraits = make_plan(params, options=CLI_OPTIONS)
    rows = []
    for image in plan.images():
        given = [p.relative_to(portraits.root).as_posix() for p in image.given] if portraits else []
        rows.append({"id": image.name, "id_slug": id_slug(image.name), "class_word": image.class_word,
                     "prompt_index": image.prompt_index, "prompt": image.prompt, "seed": image.seed,
                     "path": f"{image.sample_id}.png", "references": ";".join(given)})
    out.mkdir(parents=True, exist_ok=True)
    for folder in dict.fromkeys(r["path"].rsplit("/", 1)[0] for r in rows):
        (out / folder).mkdir(parents=True, exist_ok=True)
    csv_file, json_file = (out / name for name in PROMPT_FILES)
    with csv_file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    atomic_write_text(json_file, json.dumps({
        "protocol": plan.protocol.name, "refs": str(portraits.root) if portraits else None,
        "ids": [id_slug(i) for i in plan.ids], "prompts": [p.index for p in plan.prompts],
        "images_per_prompt": plan.n_images, "single_ref_seed": seed if single_ref else None, "seeds": plan.seeds(),
        "generation_settings_of_reference_method": plan.protocol.generation_settings, "images": rows,
    }, indent=1) + "\n")
    typer.echo(f"{len(rows)} images to generate ({len(plan.ids)} identities x {len(plan.prompts)} prompts x "
               f"{plan.n_images}); prompt list: {csv_file}")


def register(app: typer.Typer) -> None:
    app.add_typer(personalization_app, name="personalization")
