"""``triptych generate --method M --refs DIR --out DIR``: a generator over the personalization protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("generate")
    def generate_command(
        method: str = typer.Option(..., "--method", help="a registered personalization method, e.g. photomaker-v1"),
        refs: Path = typer.Option(..., "--refs", help="reference photos: a folder per identity, named <id_slug> "
                                  "or <name>_<classword> (e.g. alan_turing/ or alan_turing_man/), or listed in "
                                  "class_words.csv; the lookup of the personalization benchmark"),
        out: Path = typer.Option(..., "--out", help="output folder: <id_slug>/<NN>_<prompt_slug>/<k>.png; "
                                 ".generation/personalization_time.parquet and .generation/generation.json"),
        ids: str = typer.Option("protocol", "--ids", help="protocol (the 25 IDs), found (every identity under "
                                "--refs), N (the first N protocol IDs) or comma-separated names or id slugs"),
        prompts: str = typer.Option("all", "--prompts", help="all, N (the first N prompts) or indices and ranges, "
                                    "e.g. 0,3,10-12"),
        images_per_prompt: Optional[int] = typer.Option(None, "--images-per-prompt", help="1..4 (default: the protocol's 4)"),
        steps: Optional[int] = typer.Option(None, "--steps", help="denoising steps (default: the method's, 50)"),
        device: str = typer.Option("cuda", "--device", help="cuda, cuda:1, cpu, ..."),
        dtype: Optional[str] = typer.Option(None, "--dtype", help="float16 | bfloat16 | float32 (default: "
                                            "float16 on CUDA, float32 on the CPU)"),
        seed: int = typer.Option(0, "--seed", help="base seed: image k of prompt p of identity i gets seed + "
                                 "(i*40 + p)*4 + k, as 'triptych score --method' (recorded in generation.json)"),
        protocol: Optional[Path] = typer.Option(None, "--protocol", help="a protocol JSON (default: the packaged "
                                                "celeb-25id-40prompt)"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
        seeds: int = typer.Option(1, "--seeds", help="seed replicates per protocol image: replicate r uses base seed "
                                  "seed + r * (2^28 + 1) and writes OUT/seed-<base>/ (score them with 'triptych score "
                                  "--pred-dir OUT --seeds N')"),
    ) -> None:
        """Generate a protocol slice with a registered generator (resumable: existing images are kept)."""
        from triptych.benchmarks.generation_job import run_job
        from triptych.benchmarks.celeb_protocol import CLI_OPTIONS, load_protocol, make_plan
        from triptych.errors import InputError
        from triptych.methods import build_method
        from triptych.registry import registry

        methods = registry().methods
        if method not in methods or methods[method].task != "personalization":
            names = sorted(n for n, s in methods.items() if s.task == "personalization")
            raise InputError(f"--method {method!r} is not a registered personalization method",
                             fix=f"use one of: {', '.join(names)}")
        spec = methods[method]
        proto = load_protocol(protocol)
        from triptych.seeds import SEED_FOLDER, replicate_seeds

        # the plans of the personalization benchmark; references are checked before any model is loaded
        plans = [(s, make_plan({"refs": refs, "ids": ids, "prompts": prompts, "images_per_prompt": images_per_prompt,
                                "seed": s}, proto, CLI_OPTIONS)[0]) for s in replicate_seeds(seed, seeds)]
        invocation = {"device": device, "dtype": dtype, **({"steps": steps} if steps is not None else {})}
        generator = build_method(spec, invocation=invocation)
        describe = generator.describe() if hasattr(generator, "describe") else {"params": dict(spec.params)}
        for base, plan in plans:
            folder = out / SEED_FOLDER.format(seed=base) if seeds > 1 else out
            result = run_job(generator, plan.images(), folder, method=method, method_version=str(spec.version),
                             protocol=proto, seeds=plan.seeds(), describe=describe, progress=not quiet)
            mean = sum(result.seconds) / len(result.seconds) if result.seconds else float("nan")
            typer.echo(f"{method}: {result.generated} generated, {result.skipped} already there; "
                       f"{mean:.3f} s per generated image; {result.table}, {result.summary}", err=True)
