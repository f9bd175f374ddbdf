"""Entry point of the Dataflow flex template: template parameters in, `mrt run` out.

Dataflow hands a flex template its parameters as `--name=value` arguments mixed with pipeline options
(runner, project, region, temp_location, sdk_container_image, ...). Parameters that are `mrt run`
options go to mrt; everything else goes to Beam after `--`. `input` may list several patterns,
comma-separated, since a template parameter is one string.
"""

from __future__ import annotations

import json
import sys

from mrtcurate import cli


def run_option_names() -> set[str]:
    """Long option names (without dashes, with underscores) that `mrt run` accepts."""
    parser = cli.run_parser()
    return {
        option.lstrip("-").replace("-", "_")
        for action in parser._actions  # argparse keeps no public list of a parser's options
        for option in action.option_strings
        if option.startswith("--")
    } - {"help"}


def template_metadata() -> dict:
    """docker/flex-template/metadata.json, derived from `mrt run`'s own options so the two cannot drift."""
    parameters = []
    for action in cli.run_parser()._actions:
        longs = [option for option in action.option_strings if option.startswith("--") and not option.startswith("--no-")]
        if not longs or longs[0] == "--config":
            continue
        name = longs[0][2:].replace("-", "_")
        help_text = (action.help or name).replace("%%", "%")
        if name == "input":
            help_text = "file patterns (gs://...), comma-separated"
        parameters.append({"name": name, "label": name.replace("_", " "), "helpText": help_text, "isOptional": name not in ("input", "output")})
    return {
        "name": "mrtcurate",
        "description": "Curate raw prompt-response corpora into multi-response fine-tuning sets (mrt run).",
        "parameters": parameters,
    }


def split_template_args(argv: list[str]) -> tuple[list[str], list[str]]:
    ours, beam = [], []
    known = run_option_names()
    for argument in argv:
        name, _, value = argument.lstrip("-").partition("=")
        if argument.startswith("--") and name.replace("-", "_") in known:
            if name == "input":
                ours += [f"--input={pattern.strip()}" for pattern in value.split(",") if pattern.strip()]
            elif value.lower() in ("true", "false") and name in ("overwrite", "plan"):
                ours += [f"--{name}"] if value.lower() == "true" else ([f"--no-{name}"] if name == "plan" else [])
            else:
                ours.append(f"--{name.replace('_', '-')}={value}")
        else:
            beam.append(argument)
    return ours, beam


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--print-metadata"]:
        print(json.dumps(template_metadata(), indent=2))
        return 0
    ours, beam = split_template_args(argv)
    return cli.main(["run", *ours, "--", *beam])


if __name__ == "__main__":
    sys.exit(main())
